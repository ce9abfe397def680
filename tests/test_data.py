import pytest
import torch

from leanrnn.data import PYSTDLIB_VOCAB, decode, encode, load_digits_sequences, load_pystdlib
from leanrnn.data.pystdlib import split_of


def test_pystdlib_splits_are_disjoint_and_deterministic(tmp_path):
    for i in range(40):
        (tmp_path / f"m{i}.py").write_text(f"x = {i}\n")
    splits = {s: load_pystdlib(s, root=tmp_path) for s in ("train", "valid", "test")}
    assert sum(len(v) for v in splits.values()) == sum(len(f"x = {i}\n") for i in range(40))
    assert torch.equal(splits["train"], load_pystdlib("train", root=tmp_path))
    assert split_of("a/b.py") == split_of("a/b.py")


def test_pystdlib_real_corpus_and_vocab():
    ids = load_pystdlib("test", max_chars=5000)
    assert len(ids) == 5000 and int(ids.max()) < len(PYSTDLIB_VOCAB)
    assert decode(encode("def f(x):\n\treturn x")) == "def f(x):\n\treturn x"
    assert decode(encode("é")) == "<unk>"


def test_pystdlib_errors(tmp_path):
    with pytest.raises(ValueError, match="split="):
        load_pystdlib("dev")
    with pytest.raises(FileNotFoundError, match="no Python sources"):
        load_pystdlib("train", root=tmp_path)


def test_digits_sequences():
    (xt, yt), (xv, yv) = load_digits_sequences()
    assert xt.shape[1:] == (64, 1) and len(xt) + len(xv) == 1797
    assert 0 <= xt.min() and xt.max() <= 1 and set(yt.unique().tolist()) == set(range(10))
    (xp, _), _ = load_digits_sequences(permute=True)
    assert not torch.equal(xp, xt) and torch.equal(xp.sort(1).values, xt.sort(1).values)
