"""The .lrnn reader against hostile files: headers that pass the checksum but break the schema, broken
tensors, garbage bytes. Models are built with numpy alone (no torch), so these tests are fast."""
import copy
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from leanrnn.export import format as fmt
from leanrnn.export.exporter import summary
from leanrnn.export.format import (
    FORMAT,
    MAX_SIZE,
    VERSION,
    ModelFormatError,
    checksum,
    pack_codes,
    parse_header,
    read_lrnn,
    unpack_codes,
    write_lrnn,
)
from leanrnn.runtime import Model

CHECKSUM = "@checksum@"


def make(kind="embedding", weights=("ternary", "binary"), bn=True, V=6, H=4, E=3, T=2, seed=0, proj=0, bidir=False):
    """A small valid ``(header, tensors)`` pair: an LM (``onehot``/``embedding``) or a classifier,
    optionally with projections (``proj`` > 0) and, for a classifier, bidirectional."""
    rng = np.random.default_rng(seed)

    def f32(*s):
        return rng.normal(0, 0.5, s).astype(np.float32)

    def mat(name, rows, cols, mode):
        if mode == "fp":
            tensors[name] = f32(rows, cols)
        else:
            vals = [-1, 0, 1] if mode == "ternary" else [-1, 1]
            tensors[name] = pack_codes(rng.choice(vals, (rows, cols)), mode)
    lm = kind != "dense"
    n_in = {"onehot": V, "embedding": E, "dense": 2}[kind]
    inp = {"kind": kind, "size": n_in} | ({"vocab": V} if lm else {})
    tensors = {"embed.weight": f32(V, E)} if kind == "embedding" else {}
    layers = []
    R, D = proj or H, 2 if bidir else 1
    for k, mode in enumerate(weights):
        steps = T if bn else 1
        for pre in (f"l{k}", f"l{k}_reverse")[:D]:
            mat(f"{pre}.w_ih", n_in, 4 * H, mode)
            mat(f"{pre}.w_hh", R, 4 * H, mode)
            if proj:
                mat(f"{pre}.w_hr", H, R, mode)
                tensors[f"{pre}.s_hr"] = f32(1, R)
            for name, w in [("s_ih", 4 * H), ("s_hh", 4 * H), ("b", 4 * H)] + ([("s_c", H), ("b_c", H)] if bn else []):
                tensors[f"{pre}.{name}"] = f32(steps, w)
        layers.append({"input_size": n_in, "hidden_size": H, "weights": mode, "batch_norm": bn,
                       "bn_steps": steps, "threshold": 0.05} | ({"proj_size": proj} if proj else {})
                      | ({"reverse": {"bn_steps": steps, "threshold": 0.1}} if bidir else {}))
        n_in = D * R
    n_out = V if lm else 3
    tensors["out.weight"], tensors["out.bias"] = f32(n_out, D * R), f32(n_out)
    header = {"task": "char-lm" if lm else "classify", "vocab": list("abcdef"[:V]) if lm else None, "input": inp,
              "num_outputs": n_out, "layers": layers,
              "config": {"task": "char-lm" if lm else "classify", "lr": 0.01, "tags": ["x", {"y": 1}]}}
    return header, tensors


def write_raw(path, header, tensors, raw=()):
    """Write ``header`` as JSON with each string ``"@raw{i}@"`` replaced by the text ``raw[i]`` (for
    values json.dumps cannot make: ``1e400``, deep nesting), re-checksummed so the file reaches
    ``validate()`` whenever its header parses."""
    text = json.dumps(dict(header, checksum=CHECKSUM))
    for i, r in enumerate(raw):
        text = text.replace(json.dumps(f"@raw{i}@"), r)
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    cs = checksum(parsed, tensors) if isinstance(parsed, dict) else "0" * 64
    save_file(tensors, str(path), metadata={"leanrnn": text.replace(json.dumps(CHECKSUM), json.dumps(cs))})
    return path


def full(header):
    return dict(header, format=FORMAT, version=VERSION)


def put(h, path, value):
    """Set (or, for ``value is DELETE``, remove) the node at ``path``; False if the path is gone."""
    node = h
    for p in path[:-1]:
        if isinstance(node, dict) and p in node or isinstance(node, list) and isinstance(p, int) and p < len(node):
            node = node[p]
        else:
            return False
    last = path[-1]
    if (isinstance(node, dict) and (last in node or value is not DELETE)
            or isinstance(node, list) and isinstance(last, int) and last < len(node)):
        node.pop(last) if value is DELETE else node.__setitem__(last, value)
    else:
        return False
    return True


DELETE = object()
BASES = [make("embedding"), make("onehot", ("binary",), bn=False), make("dense", ("fp", "ternary")),
         make("dense", ("ternary", "binary"), H=6, proj=3, bidir=True), make("embedding", ("fp", "ternary"), proj=2)]


# -- the cases the review found ---------------------------------------------------------------------

FOUND = [  # (base, path, raw JSON text or DELETE, words the message must hold)
    (0, ("layers", 0, "hidden_size"), "Infinity", "Infinity"),
    (0, ("layers", 0, "hidden_size"), "1e400", "overflows"),
    (0, ("num_outputs",), "Infinity", "Infinity"),
    (0, ("num_outputs",), "1e400", "overflows"),
    (0, ("layers", 1, "threshold"), "1e400", "overflows"),
    (0, ("layers", 1, "threshold"), "-0.5", "threshold"),
    (0, ("config",), '{"a": ' * 100_000 + "0" + "}" * 100_000, "nests"),
    (0, ("config",), "[" * 100_000 + "]" * 100_000, "nests"),
    (0, ("vocab",), json.dumps([[c] for c in "abcdef"]), r"vocab\[0\]"),
    (0, ("vocab",), json.dumps(list(range(6))), r"vocab\[0\]"),
    (0, ("vocab",), json.dumps(list("abcdea")), "distinct"),
    (0, ("vocab",), json.dumps(list("abc")), "vocab"),
    (0, ("layers", 0, "hidden_size"), '"4"', "hidden_size"),
    (0, ("layers", 0, "hidden_size"), "4.9", "hidden_size"),
    (0, ("layers", 0, "hidden_size"), "4.0", "hidden_size"),
    (0, ("layers", 0, "hidden_size"), "true", "hidden_size"),
    (0, ("num_outputs",), "true", "num_outputs"),
    (0, ("version",), "true", "version"),
    (0, ("layers", 0, "batch_norm"), '"no"', "batch_norm"),
    (0, ("layers", 0, "bn_steps"), "0", "bn_steps"),
    (0, ("input", "size"), "-3", "input.size"),
    (0, ("layers",), "[]", "layers"),
    (0, ("task",), '"classify"', "input.kind"),
    (0, ("layers", 1, "weights"), '"int4"', "weights"),
    (0, ("config",), "[1, 2]", "config"),
    (0, ("input", "extra"), "1", "unknown keys"),
    (1, ("input", "vocab"), DELETE, "input.vocab"),
    (1, ("input", "vocab"), "7", "input.vocab"),
    (1, ("input", "size"), "7", "input.size"),
    (2, ("vocab",), json.dumps(["a", "b"]), "vocab"),
    (2, ("input", "size"), "3", "input_size"),
    (3, ("layers", 0, "proj_size"), "6", r"proj_size must be an integer in \[1, 5\]"),
    (3, ("layers", 0, "proj_size"), "0", "proj_size"),
    (3, ("layers", 0, "proj_size"), DELETE, "input_size"),
    (3, ("layers", 1, "reverse"), DELETE, r"layers\[1\].reverse must be present as in layers\[0\]"),
    (3, ("layers", 0, "reverse"), DELETE, r"layers\[1\].input_size"),
    (3, ("layers", 0, "reverse", "threshold"), "-1", r"reverse.threshold"),
    (3, ("layers", 1, "reverse", "bn_steps"), "0", r"reverse.bn_steps"),
    (3, ("layers", 1, "reverse", "bn_steps"), "3", r"'l1_reverse.s_ih' is float32\(2, 24\), expected float32\(3, 24\)"),
    (3, ("layers", 1, "reverse", "x"), "1", "unknown keys"),
    (3, ("layers", 1, "reverse"), "true", "reverse must be a JSON object"),
    (3, ("version",), "2", "absent in a version 2 file"),
    (4, ("layers", 0, "reverse"), json.dumps({"bn_steps": 2, "threshold": 0}), "language model"),
    (4, ("layers", 1, "proj_size"), "3", r"'l1.w_hh' is uint8\(2, 4\), expected uint8\(3, 4\)"),
    (0, ("layers", 0, "prune_output"), "true", r"prune_output must be false, or absent"),
    (0, ("layers", 0, "prune_output"), "0", r"prune_output must be false"),
    (3, ("layers", 1, "reverse", "prune_output"), '"no"', r"reverse.prune_output must be false"),
]


@pytest.mark.parametrize("base, path, raw, words", FOUND,
                         ids=[f"{'.'.join(map(str, c[1]))}={str(c[2])[:12]}" for c in FOUND])
def test_found_header_defects_are_model_format_errors(tmp_path, base, path, raw, words):
    header, tensors = BASES[base]
    h = full(copy.deepcopy(header))
    assert put(h, path, DELETE if raw is DELETE else "@raw0@")
    p = write_raw(tmp_path / "m.lrnn", h, tensors, () if raw is DELETE else (raw,))
    with pytest.raises(ModelFormatError, match=words) as e:
        Model.load(p)
    assert "\n" not in str(e.value) and "export" in str(e.value)


def test_valid_bases_load_and_the_writer_round_trips(tmp_path):
    for header, tensors in BASES:
        p = write_raw(tmp_path / "m.lrnn", full(header), tensors)
        h, t = read_lrnn(p)
        assert h["layers"] == header["layers"] and t.keys() == tensors.keys()
        write_lrnn(tmp_path / "w.lrnn", header, tensors)
        assert read_lrnn(tmp_path / "w.lrnn")[0] == h


def test_json_recursion_is_caught_even_past_the_depth_check(monkeypatch):
    monkeypatch.setattr(fmt, "MAX_DEPTH", 10**9)
    with pytest.raises(ModelFormatError, match="RecursionError"):
        parse_header("[" * 200_000 + "]" * 200_000)


def test_header_size_duplicates_and_constants_are_refused(monkeypatch):
    with pytest.raises(ModelFormatError, match="duplicate key 'a'"):
        parse_header('{"a": 1, "a": 2}')
    with pytest.raises(ModelFormatError, match="NaN"):
        parse_header('{"a": NaN}')
    with pytest.raises(ModelFormatError, match="JSON object"):
        parse_header("[1]")
    assert fmt.nesting_depth('{"a": "[[[[{{", "b": [[1], {"c": "]"}]}') == 3
    monkeypatch.setattr(fmt, "MAX_HEADER_CHARS", 100)
    with pytest.raises(ModelFormatError, match="characters"):
        parse_header('{"a": "' + "x" * 200 + '"}')


# -- hypothesis: hostile but well-formed headers, re-checksummed ------------------------------------

LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 8), st.integers(-2**70, 2**70),
    st.sampled_from([2**31, 2**63, MAX_SIZE + 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([4.9, 4.0, 1e308, -0.0, 0.5, 0.05]),
    st.text(max_size=4),
    st.sampled_from(["4", "true", "ternary", "binary", "fp", "onehot", "dense", "embedding", "classify",
                     "char-lm", "word-lm", "leanrnn"]),
)
JUNK = st.recursive(LEAF, lambda c: st.one_of(st.lists(c, max_size=4),
                                              st.dictionaries(st.text(max_size=3), c, max_size=3)),
                    max_leaves=8)
RAW = st.sampled_from(["1e400", "-1e400", "Infinity", "-Infinity", "NaN", "1" + "0" * 5000, "[" * 5000 + "]" * 5000,
                       '{"a":' * 40 + "0" + "}" * 40, "4.0", "true", "1E2", "-0.0"])
VOCAB = st.lists(st.one_of(st.text(max_size=2), st.integers(), st.lists(st.text(max_size=1), max_size=2)), max_size=8)


def paths(node, prefix=()):
    """Every node's path below the root, except the checksum (which the fuzzer recomputes)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        if prefix + (k,) != ("checksum",):
            yield prefix + (k,)
            yield from paths(v, prefix + (k,))


def mutate(data, h, raw):
    """One hostile edit of ``h`` in place; raw JSON texts it places are appended to ``raw``."""
    kind = data.draw(st.sampled_from(["set", "set", "set", "raw", "delete", "add", "vocab"]))
    if kind == "vocab":
        h["vocab"] = data.draw(VOCAB)
        return
    ps = list(paths(h))
    if kind == "add":
        where = data.draw(st.sampled_from([()] + [p for p in ps if isinstance(_get(h, p), dict)]))
        put(h, where + (data.draw(st.text(max_size=6)),), data.draw(JUNK))
        return
    path = data.draw(st.sampled_from(ps))
    if kind == "delete":
        put(h, path, DELETE)
    elif kind == "raw":
        put(h, path, f"@raw{len(raw)}@")
        raw.append(data.draw(RAW))
    else:
        put(h, path, data.draw(JUNK))


def _get(h, path):
    for p in path:
        h = h[p]
    return h


def outputs(m, x):
    """Logits of ``x`` ``(T, B, n)``: per step, or per sequence for a bidirectional classifier
    (which runs on whole sequences only)."""
    if m.bidirectional:
        with pytest.raises(ValueError, match="bidirectional"):
            m.run(x)
        return m.classify(x.transpose(1, 0, 2)), None
    return m.run(x)


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    d = tmp_path_factory.mktemp("orig")
    out = []
    for i, (header, tensors) in enumerate(BASES):
        m = Model.load(write_raw(d / f"{i}.lrnn", full(header), tensors))
        x = np.array([[1, 2], [3, 4], [5, 0]]) if m.is_lm else np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 2, 2)
        out.append((m, x, outputs(m, x)[0]))
    return out


def behaves(m, path, original):
    """A mutated header that loads: every public entry point works, and the model computes what the
    original did unless the mutation changed what it computes (layers, input or code layout)."""
    ref, x, y_ref = original
    if m.is_lm != ref.is_lm:  # the task moved between LM and classifier: inputs differ
        return
    y, state = outputs(m, x)
    assert y.shape == y_ref.shape or m.bidirectional != ref.bidirectional
    assert state is None or all(type(s) is float for s in state.sparsity())
    if (m.header["layers"] == ref.header["layers"] and m.header["input"] == ref.header["input"]
            and m.header["version"] == ref.header["version"]):
        assert np.array_equal(y, y_ref)
    assert m.header["task"] in summary(path)
    if m.is_lm:  # a prompt of the file's own vocabulary (an unknown character is refused on purpose)
        assert isinstance(m.generate("".join(m.vocab[1:3]) or m.vocab[0], n=3), str)
    else:
        assert m.classify(x.transpose(1, 0, 2)).shape == (2, m.header["num_outputs"])


FUZZ_EXAMPLES, MIN_REACHING = 720, 500


def test_hostile_headers_raise_only_model_format_error(tmp_path, monkeypatch, originals):
    reached, real = [0], fmt.validate

    def counting(header, tensors):
        reached[0] += 1
        return real(header, tensors)

    monkeypatch.setattr(fmt, "validate", counting)
    outcomes = {"refused": 0, "loaded": 0}

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        base = data.draw(st.integers(0, len(BASES) - 1))
        header, tensors = BASES[base]
        h = full(copy.deepcopy(header))
        raw = []
        for _ in range(data.draw(st.integers(1, 2))):
            mutate(data, h, raw)
        p = write_raw(tmp_path / "h.lrnn", h, tensors, raw)
        try:
            m = Model.load(p)
        except ModelFormatError as e:
            assert "\n" not in str(e)
            outcomes["refused"] += 1
            return
        outcomes["loaded"] += 1
        behaves(m, p, originals[base])

    fuzz()
    assert reached[0] >= MIN_REACHING, f"only {reached[0]} generated headers reached validate()"
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0, outcomes


# -- tensors --------------------------------------------------------------------------------------------

def _with(tensors, **changes):
    t = dict(tensors)
    for k, v in changes.items():
        name = k.replace("__", ".")
        if v is None:
            del t[name]
        else:
            t[name] = v
    return t


def _padded():
    """A binary layer of 3 units: 12 codes in 2 bytes per row, the second with 4 padding bits set."""
    header, t = make(weights=("binary",), H=3)
    return header, _with(t, l0__w_hh=t["l0.w_hh"] | np.array([0, 0x80], np.uint8))


def _padded_ternary():
    """16 ternary codes per row in 4 base-3 bytes: the last holds one code, so it must be below 3."""
    header, t = make(weights=("ternary",))
    w = t["l0.w_hh"].copy()
    w[1, -1] = 3
    return header, _with(t, l0__w_hh=w)


BAD_TENSORS = {  # change -> (header, tensors), words the message must hold
    "codes": (lambda h, t: (h, _with(t, l0__w_hh=np.full_like(t["l0.w_hh"], 243))), "invalid value 243"),
    "padding": (lambda h, t: _padded(), "non-zero padding"),
    "base-3 padding": (lambda h, t: _padded_ternary(), "non-zero padding"),
    "projection missing": (lambda h, t: (BASES[3][0], _with(BASES[3][1], l0__w_hr=None)), "'l0.w_hr' is missing"),
    "reverse shape": (lambda h, t: (BASES[3][0], _with(BASES[3][1], l1_reverse__s_hr=np.zeros((1, 6), np.float32))),
                      r"'l1_reverse.s_hr' is float32\(1, 6\), expected float32\(1, 3\)"),
    "reverse missing": (lambda h, t: (BASES[3][0], _with(BASES[3][1], l0_reverse__b=None)),
                        "'l0_reverse.b' is missing"),
    "output width": (lambda h, t: (BASES[3][0], _with(BASES[3][1], out__weight=np.zeros((3, 3), np.float32))),
                     r"out.weight.*expected float32\(3, 6\)"),
    "dtype": (lambda h, t: (h, _with(t, l0__b=t["l0.b"].astype(np.float64))), "expected float32"),
    "nan": (lambda h, t: (h, _with(t, l1__s_c=np.where(np.arange(4) == 2, np.nan, t["l1.s_c"]).astype(np.float32))),
            "non-finite"),
    "shape": (lambda h, t: (h, _with(t, l0__s_ih=t["l0.s_ih"][:, :-1].copy())), "l0.s_ih"),
    "missing": (lambda h, t: (h, _with(t, l1__b=None)), "'l1.b' is missing"),
    "extra": (lambda h, t: (h, _with(t, junk=np.zeros(3, np.float32))), "unexpected tensors"),
    "embed": (lambda h, t: (h, _with(t, embed__weight=t["embed.weight"][:-1].copy())), "embed.weight"),
    "packed dtype": (lambda h, t: (h, _with(t, l0__w_ih=t["l0.w_ih"].astype(np.int8))), "expected uint8"),
}


@pytest.mark.parametrize("change", list(BAD_TENSORS))
def test_bad_tensors_are_refused(tmp_path, change):
    build, words = BAD_TENSORS[change]
    header, bad = build(*BASES[0])
    write_lrnn(tmp_path / "m.lrnn", header, bad)
    with pytest.raises(ModelFormatError, match=words):
        Model.load(tmp_path / "m.lrnn")


def test_codes_decode_into_int8_without_wide_temporaries(monkeypatch):
    rng = np.random.default_rng(0)
    for mode, vals in (("ternary", [-1, 0, 1]), ("binary", [-1, 1])):
        codes = rng.choice(vals, (300, 4 * 1001)).astype(np.int8)  # 4H = 4004: rows end in padding
        packed = pack_codes(codes, mode)
        tracemalloc.start()
        got = unpack_codes(packed, codes.shape[1], mode)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert got.dtype == np.int8 and got.flags.c_contiguous and np.array_equal(got, codes)
        assert peak < 2.2 * codes.nbytes, f"{mode}: decoding peaked at {peak / codes.nbytes:.1f} bytes per weight"
    monkeypatch.setattr(fmt, "_BLOCK", 7)  # many row blocks, one row at a time
    assert np.array_equal(unpack_codes(packed, codes.shape[1], "binary"), codes)


def test_writer_refuses_folders_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    header, tensors = BASES[1]
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
        write_lrnn(tmp_path, header, tensors)
    with pytest.raises(FileNotFoundError, match="does not exist; create it"):
        write_lrnn(tmp_path / "no" / "m.lrnn", header, tensors)

    def half_written(tensors, name, metadata):
        Path(name).write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr("safetensors.numpy.save_file", half_written)
    with pytest.raises(OSError, match="cannot write .*disk full"):
        write_lrnn(tmp_path / "m.lrnn", header, tensors)
    assert list(tmp_path.iterdir()) == []


# -- any file at all ------------------------------------------------------------------------------------

@pytest.mark.parametrize("what", ["missing", "folder", "empty", "text", "random", "zip", "json-only"])
def test_any_file_is_a_model_format_error(tmp_path, what):
    p = tmp_path / "x.lrnn"
    if what == "folder":
        p.mkdir()
    elif what == "empty":
        p.write_bytes(b"")
    elif what == "text":
        p.write_text("hello\n" * 100)
    elif what == "random":
        p.write_bytes(np.random.default_rng(0).bytes(5000))
    elif what == "zip":
        p.write_bytes(b"PK\x03\x04" + bytes(200))
    elif what == "json-only":
        save_file({"a": np.zeros(2, np.float32)}, str(p), metadata={"other": "1"})
    with pytest.raises(ModelFormatError, match="folder" if what == "folder" else None) as e:
        Model.load(p)
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory):
    header, tensors = BASES[0]
    return write_raw(tmp_path_factory.mktemp("fuzz") / "m.lrnn", full(header), tensors).read_bytes()


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_bytes_never_crash_or_load_garbage(valid_bytes, tmp_path, data):
    b = bytearray(valid_bytes)
    head = 8 + int.from_bytes(valid_bytes[:8], "little")  # safetensors: length, JSON header, tensor bytes
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        i = data.draw(st.one_of(st.integers(0, min(head, len(b)) - 1), st.integers(0, len(b) - 1)))
        if kind == "flip":
            b[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set":
            b[i] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del b[i:]
        else:
            b[i:i] = bytes(data.draw(st.binary(min_size=1, max_size=8)))
        if not b:
            b = bytearray(b"\0")
    p = tmp_path / "f.lrnn"
    p.write_bytes(bytes(b))
    try:
        h, t = read_lrnn(p)
    except ModelFormatError:
        return
    # A mutation that still loads must have left every tensor and the header intact.
    p.write_bytes(valid_bytes)
    h0, t0 = read_lrnn(p)
    assert h == h0 and t.keys() == t0.keys() and all(np.array_equal(t[k], t0[k]) for k in t)
