import gzip
import struct

import numpy as np
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


# -- bad input: refused at load time, naming the file and the fix -------------------------------------

TRAIN = ["--hidden", "4", "--batch", "4", "--epochs", "1", "--steps-per-epoch", "1", "--threads", "1", "--no-progress"]


def _cli(argv, tmp_path, capsys):
    from leanrnn.cli import main
    code = main(argv + ["--out", str(tmp_path / "run")] + TRAIN)
    return code, capsys.readouterr().err.strip()


def _idx(path, arr, code=0x08, gz=False):
    data = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def _idx_dir(d, n=24, labels=None):
    d.mkdir(exist_ok=True)
    x = np.random.default_rng(0).integers(0, 256, (n, 2, 2), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.uint8) if labels is None else labels
    for prefix in ("train", "t10k"):
        _idx(d / f"{prefix}-images-idx3-ubyte", x)
        _idx(d / f"{prefix}-labels-idx1-ubyte", y)
    return d


def _corrupt_gz(img):
    data = gzip.compress(img.read_bytes())
    img.with_name(img.name + ".gz").write_bytes(data[:12] + bytes(b ^ 0x55 for b in data[12:30]) + data[30:])
    img.unlink()


@pytest.mark.parametrize("break_it, msg", [
    (lambda img, lab: img.write_bytes(bytes([0, 0, 8, 3, 0, 0])), "cut-off header: 3 dimensions need 16"),
    (lambda img, lab: _corrupt_gz(img), r"images-idx3-ubyte\.gz is not an intact gzip file"),
    (lambda img, lab: img.write_bytes(gzip.compress(img.read_bytes())), "is gzip-compressed; name it"),
    (lambda img, lab: img.write_bytes(b"PK\x03\x04junk"), "bad magic number.*; replace it with an intact copy"),
    (lambda img, lab: (_idx(img, np.zeros((0, 2, 2), np.uint8)), _idx(lab, np.zeros(0, np.uint8))),
     "images-idx3-ubyte holds no images"),
    (lambda img, lab: _idx(img, np.full((24, 2, 2), 0.5, ">f8"), 0x0E),
     "images-idx3-ubyte holds float64 pixels; MNIST-format images are unsigned bytes"),
    (lambda img, lab: _idx(lab, np.full(24, 200, np.uint8)), "labels-idx1-ubyte holds label 200, outside the 10"),
    (lambda img, lab: _idx(lab, np.full(24, -1, np.int8), 0x09), "labels-idx1-ubyte holds label -1"),
    (lambda img, lab: (_idx(img, np.zeros((3, 2, 2), np.uint8)), _idx(lab, np.zeros(3, np.uint8))),
     "3 training images are too few to set aside a validation split"),
])
def test_corrupt_idx_is_refused_naming_the_file_and_fix(tmp_path, break_it, msg):
    from leanrnn.data import DataError, load_for_task
    d = _idx_dir(tmp_path / "idx")
    break_it(d / "train-images-idx3-ubyte", d / "train-labels-idx1-ubyte")
    with pytest.raises(DataError, match=msg):
        load_for_task("classify", str(d))


def test_idx_big_endian_types_come_back_in_native_byte_order(tmp_path):
    from leanrnn.data import read_idx
    for code, dtype in ((0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")):
        _idx(tmp_path / "f", np.arange(6, dtype=dtype).reshape(2, 3), code)
        a = read_idx(tmp_path / "f")
        assert torch.equal(torch.from_numpy(a), torch.arange(6).reshape(2, 3).to(torch.from_numpy(a).dtype))


def test_cli_refuses_idx_labels_outside_the_classes(tmp_path, capsys):
    d = _idx_dir(tmp_path / "idx", labels=np.full(24, 200, np.uint8))
    code, err = _cli(["train", "--task", "classify", "--data", str(d)], tmp_path, capsys)
    assert code == 2 and err.startswith("leanrnn: error:") and "\n" not in err
    assert "holds label 200" in err and "give labels 0-9" in err


@pytest.mark.parametrize("source, files, msg", [
    ("text8", {"text8": b"hello w\xc3\xb6rld " * 20}, r"text8 is not ASCII text: byte 0xc3 at offset 7; give the"),
    ("ptb-word", {f"ptb.{s}.txt": b"abc \xff\xfe def\n" * 20 for s in ("train", "valid", "test")},
     r"ptb\.train\.txt is not UTF-8 text: byte 0xff at offset 4; give the original"),
    ("ptb-char", {f"ptb.char.{s}.txt": b"a b c _ \xff\n" * 20 for s in ("train", "valid", "test")},
     r"ptb\.char\.train\.txt is not UTF-8 text: byte 0xff at offset 8"),
])
def test_corpus_files_that_are_not_their_encoding_are_refused_with_offset(tmp_path, source, files, msg):
    from leanrnn.data import DataError, load_text
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError, match=msg):
        load_text(source, "word" if source == "ptb-word" else "char", str(tmp_path))


def test_cli_refuses_text8_that_is_not_ascii(tmp_path, capsys):
    (tmp_path / "t8").mkdir()
    (tmp_path / "t8" / "text8").write_bytes(b"hello w\xc3\xb6rld " * 20)
    code, err = _cli(["train", "--data", "text8", "--data-dir", str(tmp_path / "t8")], tmp_path, capsys)
    assert code == 2 and "\n" not in err and "byte 0xc3 at offset 7" in err


def test_pystdlib_data_dir_errors_name_the_flag_and_a_fix(tmp_path, capsys):
    from leanrnn.data import DataError, check_for_task
    f = tmp_path / "a.py"
    f.write_text("x = 1\n")
    with pytest.raises(DataError, match="does not exist; give --data-dir a folder of .py files, or leave"):
        check_for_task("char-lm", "pystdlib", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="is not a folder; give --data-dir a folder of .py files"):
        check_for_task("char-lm", "pystdlib", str(f))
    with pytest.raises(FileNotFoundError, match=r"is not a folder; .*\(--data-dir DIR; root= in Python\)"):
        load_pystdlib("train", root=f)
    for dd in (tmp_path / "nope", tmp_path):  # an existing folder is not read either: refused, not ignored
        with pytest.raises(DataError, match="'digits' reads no --data-dir"):
            check_for_task("classify", "digits", str(dd))
    for dd in (f, tmp_path / "nope"):
        code, err = _cli(["train", "--data", "pystdlib", "--data-dir", str(dd)], tmp_path, capsys)
        assert code == 2 and "--data-dir" in err and "always present" not in err and "root=" not in err
