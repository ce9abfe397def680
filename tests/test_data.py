import pytest
import torch

from leanrnn.data import (
    PYSTDLIB_VOCAB,
    decode,
    encode,
    load_digits_sequences,
    load_pystdlib,
)
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
    (xt, yt), (xv, _yv) = load_digits_sequences()
    assert xt.shape[1:] == (64, 1) and len(xt) + len(xv) == 1797
    assert xt.min() >= 0 and xt.max() <= 1 and set(yt.unique().tolist()) == set(range(10))
    (xp, _), _ = load_digits_sequences(permute=True)
    assert not torch.equal(xp, xt) and torch.equal(xp.sort(1).values, xt.sort(1).values)


def test_text_detection_and_folders_skip_binary_files(tmp_path):
    from leanrnn.data import DataError, check_for_task, is_text, load_text
    from leanrnn.data.text import text_files
    (tmp_path / "a.txt").write_text("héllo wörld\n" * 200)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1") * 50)
    (tmp_path / "w.pt").write_bytes(b"PK\x03\x04" + bytes(200))
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (tmp_path / "noise.bin").write_bytes(bytes(range(1, 256)) * 40)
    assert [is_text(tmp_path / n) for n in ("a.txt", "latin1.txt", "w.pt", "img.png", "noise.bin")] == \
        [True, True, False, False, False]
    assert sorted(text_files(tmp_path)) == ["a.txt", "latin1.txt"]
    assert check_for_task("char-lm", str(tmp_path)) == [
        f"skipped 3 file(s) under {tmp_path} that are not text (img.png, noise.bin, w.pt)"]
    assert len(load_text(str(tmp_path), "char").vocab) < 30
    with pytest.raises(DataError, match="not a text file"):
        load_text(str(tmp_path / "w.pt"), "char")
    with pytest.raises(DataError, match="not a text file"):
        check_for_task("char-lm", str(tmp_path / "img.png"))
    with pytest.raises(DataError, match="serves char-lm, not word-lm"):
        check_for_task("word-lm", "pystdlib")
    with pytest.raises(DataError, match="not a folder of MNIST-format IDX files"):
        check_for_task("classify", str(tmp_path / "a.txt"))
