"""The ahead-of-time module: the same results as the Numba-compiled loops, bit for bit; no
Numba import in a job's ranks when it is present; the Numba path when it is absent or
built for another key."""

import json
import re
import shutil
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from mpigc import kernels
from mpigc.data import svmlight
from mpigc.kernels import _aot, _compile, _layouts, _loops
from mpiutil import MPI_SCRIPTS, assert_ok, run_mpi


@pytest.fixture(scope="module")
def aot():
    """This key's module, built into the suite's cache when it is not there (once per
    change of the sources)."""
    _aot.build()  # raises Unavailable, failing the test, where it cannot be built
    module = _aot._import(_aot.module_path())
    assert module is not None
    return module


def _matrix(key, rng, n=203, d=37):
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < (0.3 if key[0] == "csr" else 1))
    if key[0] == "dense":
        return np.ascontiguousarray(X, dtype=key[1]), (np.ascontiguousarray(X, dtype=key[1]),)
    m = sp.csr_matrix(X, dtype=key[1])
    m.indices, m.indptr = m.indices.astype(key[2]), m.indptr.astype(key[2])
    return m, (m.data, m.indices, m.indptr)


@pytest.mark.parametrize("key", _layouts.KEYS, ids=_layouts.entry_name)
def test_every_layout_matches_the_numba_path_bit_for_bit(aot, key):
    jit = _compile.compile_keys([key])[0][key]
    ahead = getattr(aot, _layouts.entry_name(key))
    rng = np.random.default_rng(len(key))
    X, arrays = _matrix(key, rng)
    n, d = X.shape
    for model, code in _layouts.MODEL_CODES.items():
        y = np.sign(rng.standard_normal(n)) if model == "logistic" else rng.standard_normal(n)
        for intercept in (False, True):
            w = rng.standard_normal(d + intercept)
            for start, stop in ((0, n), (5, 141), (17, 17)):
                g_jit, g_aot = np.full(d + intercept, 0.5), np.full(d + intercept, 0.5)
                loss_jit = jit(code, *arrays, y, w, start, stop, g_jit, intercept)
                loss_aot = ahead(code, *arrays, y, w, start, stop, g_aot, intercept)
                assert loss_aot == loss_jit and np.array_equal(g_aot, g_jit), \
                    (model, intercept, start, stop)


def test_the_parser_matches_the_numba_path(aot, tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    lines = [f"{rng.integers(0, 2)} " + " ".join(
        f"{j}:{float(v)!r}" for j, v in zip(np.sort(rng.choice(400, 9, replace=False)) + 1,
                                     rng.standard_normal(9) * 10.0 ** rng.integers(-30, 30, 9)))
        for _ in range(700)]
    lines[5] += " # comment"
    lines[9] = "1 3:1e-320 2:0.123456789012345678901234 7:+5"  # slow tokens, unsorted
    path = tmp_path / "d.svm"
    path.write_text("\n".join(lines) + "\n")
    results = []
    for loops in (svmlight.jit_loops(), {n: getattr(aot, n) for n in svmlight.PARSER_LOOPS}):
        monkeypatch.setattr(svmlight, "_loops", loops)
        index = svmlight.index_file(path)
        parsed = svmlight.parse_text(path.read_bytes(), 700, 400, False, str(path))
        results.append([index.offsets, index.lines, index.colons, index.max_index, *parsed])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_model_codes_agree_with_the_loops():
    assert _layouts.MODEL_CODES == _loops.MODEL_CODES


def test_the_key_follows_sources_and_cpu(tmp_path):
    copies = []
    for p in _aot.SOURCES:
        copies.append(tmp_path / p.name)
        shutil.copy(p, copies[-1])
    cpu = _aot.cpu_identity()
    assert cpu is not None and b"flags" in cpu  # this machine: x86 Linux
    base = _aot.key(copies, cpu)
    assert base == _aot.key(_aot.SOURCES, cpu) == _aot.key()
    assert _aot.key(copies, cpu + b" avx512f") != base
    copies[3].write_bytes(copies[3].read_bytes() + b"\n")  # _loops.py edited
    assert _aot.key(copies, cpu) != base


def test_the_key_follows_numba_codegen_settings(monkeypatch):
    base = _aot.key()
    monkeypatch.setenv("NUMBA_BOUNDSCHECK", "1")
    assert _aot.key() != base
    monkeypatch.delenv("NUMBA_BOUNDSCHECK")
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")  # no effect on the code: same module
    assert _aot.key() == base


def test_absent_or_foreign_module_falls_back_to_numba(aot, tmp_path, monkeypatch):
    name, path = _aot.module_path()
    # a module of another key (another CPU, older sources) is in the directory: not loaded
    shutil.copy(path, tmp_path / ("mpigc_aot_" + "0" * 32 + _aot._SUFFIX))
    monkeypatch.setattr(_aot, "directory", lambda: str(tmp_path))
    assert _aot._import(_aot.module_path()) is None
    # a file of this key that does not load (truncated; or a noexec mount): not loaded,
    # and removed by the next build, so that it is built again
    (tmp_path / (name + _aot._SUFFIX)).write_bytes(b"\x7fELF truncated")
    assert _aot._import(_aot.module_path()) is None
    assert not _aot._usable(_aot.module_path())
    assert not (tmp_path / (name + _aot._SUFFIX)).exists()
    # nor without a CPU identity
    monkeypatch.setattr(_aot, "cpu_identity", lambda: None)
    assert _aot.module_path() is None and _aot._import(None) is None
    monkeypatch.setattr(_aot, "_loaded", [None])
    monkeypatch.setattr(kernels, "_entry_points", {})
    monkeypatch.setattr(svmlight, "_loops", {})
    X = np.array([[1.0, 2.0]])
    grad = np.zeros(2)
    assert kernels.loss_grad("linear", X, np.zeros(1), np.ones(2), 0, 1, grad) == 4.5
    assert np.all(grad == [3.0, 6.0])
    assert kernels._entry_points[("dense", "float64")] is \
        _compile.compile_keys([("dense", "float64")])[0][("dense", "float64")]
    assert svmlight.compiled()["index_block"] is svmlight.jit_loops()["index_block"]


def test_an_unwritable_directory_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(_aot, "directory", lambda: str(blocker / "mpigc-aot"))
    with pytest.raises(_aot.Unavailable, match="cannot write .*file/mpigc-aot"):
        _aot.build()


def _ranks_imports(out, data):
    res = assert_ok(run_mpi(3, [MPI_SCRIPTS / "startup_imports.py", "train", "--iterations", "1",
                                "--quiet", "--data", data, "--out", out], timeout=120))
    # the ranks' lines may interleave: each report is one JSON object without nesting
    reports = [json.loads(m) for m in re.findall(r'\{"status".*?\}', res.stdout)]
    assert len(reports) == 3 and all(r["status"] == 0 for r in reports), res.stdout
    return reports


def test_a_job_with_the_module_never_imports_numba(aot, tmp_path):
    # dense data: neither Numba nor scipy.sparse on any rank (the PS, the workers)
    for r in _ranks_imports(tmp_path / "dense", "synthetic:n=3000,d=20"):
        assert not r["numba"] and not r["scipy.sparse"], r
    # an svmlight file: the ranks index it together, the workers parse their rows, no Numba
    rng = np.random.default_rng(0)
    path = tmp_path / "d.svm"
    path.write_text("".join(f"{2 * rng.integers(0, 2) - 1} 1:{rng.standard_normal()} "
                            f"{rng.integers(2, 30)}:1.5\n" for _ in range(600)))
    assert not any(r["numba"] for r in _ranks_imports(tmp_path / "svm", str(path)))
    assert "numba" in sys.modules  # this test process, on the contrary, built the module
