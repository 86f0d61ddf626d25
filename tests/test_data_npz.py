""".npz data files: dense and CSR round trips, memory-mapped partial reads, bad files."""

import os
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_diabetes

from mpigc.data import NpzSource, parse_data_spec, prepare_labels, save_npz
from mpigc.errors import UsageError


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    X = sp.random(300, 40, density=0.1, random_state=1, format="csr")
    y = rng.integers(0, 2, 300).astype(float)
    return X, y


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("compressed", [False, True])
def test_round_trip(tmp_path, problem, sparse, compressed):
    X, y = problem
    X = X if sparse else X.toarray()
    path = tmp_path / "d.npz"
    save_npz(path, X, y, compressed=compressed)
    src = parse_data_spec(str(path))
    assert (src.n_rows, src.n_features, src.is_sparse) == (300, 40, sparse)
    ranges = [(250, 300), (0, 3), (100, 100), (7, 8)]
    Xr, yr = src.read_rows(ranges)
    idx = np.concatenate([np.arange(a, b) for a, b in ranges])
    Xd = X.toarray() if sparse else X
    got = Xr.toarray() if sparse else Xr
    np.testing.assert_array_equal(got, Xd[idx])
    np.testing.assert_array_equal(yr, y[idx])
    assert yr.dtype == np.float64 and (sparse or Xr.flags.c_contiguous)
    np.testing.assert_array_equal(src.labels(), y)


def test_csr_file_is_scipy_compatible(tmp_path, problem):
    X, y = problem
    save_npz(tmp_path / "s.npz", X, y)
    assert abs(sp.load_npz(tmp_path / "s.npz") - X).max() == 0
    # and a file written by scipy.sparse.save_npz plus y is readable
    sp.save_npz(tmp_path / "t.npz", X, compressed=False)
    with zipfile.ZipFile(tmp_path / "t.npz", "a") as zf, zf.open("y.npy", "w") as f:
        np.lib.format.write_array(f, y)
    Xr, yr = parse_data_spec(str(tmp_path / "t.npz")).read_rows([(0, 300)])
    assert abs(Xr - X).max() == 0 and np.array_equal(yr, y)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("compressed", [False, True])
def test_reads_only_the_requested_rows(tmp_path, problem, monkeypatch, sparse, compressed):
    X, y = problem
    X = X if sparse else X.toarray()
    save_npz(tmp_path / "d.npz", X, y, compressed=compressed)
    src = parse_data_spec(str(tmp_path / "d.npz"))
    # np.load reads whole members: forbid it; rows come from memory maps (stored members)
    # or from a decompressed stream that keeps only the requested rows
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load called"))
    Xr, yr = src.read_rows([(10, 20), (290, 300)])
    idx = np.r_[10:20, 290:300]
    np.testing.assert_array_equal(Xr.toarray() if sparse else Xr,
                                  (X.toarray() if sparse else X)[idx])
    np.testing.assert_array_equal(yr, y[idx])
    if not compressed:
        assert all(isinstance(m.whole(), np.memmap) for m in src.m.values())
    if sparse:
        assert Xr.indices.dtype == Xr.indptr.dtype   # what the CSR kernels require


def test_float32_overflow_is_reported(tmp_path):
    save_npz(tmp_path / "big.npz", np.array([[1.0, 1e300]]), np.ones(1))
    src = parse_data_spec(str(tmp_path / "big.npz"))
    assert src.read_rows([(0, 1)])[0][0, 1] == 1e300
    with pytest.raises(UsageError, match="big.npz: X has \\+inf at row 0, feature 1"):
        src.read_rows([(0, 1)], dtype="float32")


@pytest.mark.parametrize("compressed", [False, True])
def test_only_requested_rows_are_checked(tmp_path, compressed):
    X = np.arange(60.0).reshape(20, 3)
    X[3, 2] = np.nan
    save_npz(tmp_path / "n.npz", X, np.ones(20), compressed=compressed)
    src = parse_data_spec(str(tmp_path / "n.npz"))
    np.testing.assert_array_equal(src.read_rows([(4, 20)])[0], X[4:])
    with pytest.raises(UsageError, match=r"n.npz: X has NaN at row 3, feature 2"):
        src.read_rows([(10, 12), (0, 5)])


def test_fortran_order_dense(tmp_path):
    X = np.asfortranarray(np.arange(24.0).reshape(8, 3))
    np.savez(tmp_path / "f.npz", X=X, y=np.ones(8))
    Xr, _ = parse_data_spec(str(tmp_path / "f.npz")).read_rows([(2, 5)])
    assert Xr.flags.c_contiguous
    np.testing.assert_array_equal(Xr, X[2:5])


@pytest.mark.parametrize("loader, model", [(load_breast_cancer, "logistic"),
                                           (load_diabetes, "linear")])
def test_sklearn_datasets_round_trip(tmp_path, loader, model):
    X, y = loader(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    save_npz(tmp_path / "real.npz", X, y)
    src = parse_data_spec(str(tmp_path / "real.npz"))
    src.validate(model)
    Xr, yr = src.read_rows([(0, src.n_rows)])
    np.testing.assert_array_equal(Xr, X)
    np.testing.assert_array_equal(prepare_labels(yr, model),
                                  np.where(y > 0, 1.0, -1.0) if model == "logistic" else y)


def test_several_files_are_one_data_set(tmp_path, problem):
    X, y = problem
    save_npz(tmp_path / "part-0.npz", X[:100], y[:100])
    save_npz(tmp_path / "part-1.npz", X[100:].toarray(), y[100:])
    for spec in (f"{tmp_path}/part-0.npz+{tmp_path}/part-1.npz", f"{tmp_path}/part-*.npz"):
        src = parse_data_spec(spec)
        assert (src.n_rows, src.n_features, src.is_sparse) == (300, 40, True)
        Xr, yr = src.read_rows([(90, 110), (0, 2)])
        idx = np.r_[90:110, 0:2]
        np.testing.assert_array_equal(Xr.toarray(), X.toarray()[idx])
        np.testing.assert_array_equal(yr, y[idx])
        np.testing.assert_array_equal(src.labels(), y)


def _write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_bad_npz_files(tmp_path):
    ok = np.ones((4, 2))
    cases = [
        (str(tmp_path / "missing.npz"), "data file not found: .*missing.npz"),
        (str(tmp_path), "data file is a directory"),
        (_write(tmp_path / "noy.npz", X=ok), "noy.npz: no array 'y'"),
        (_write(tmp_path / "nox.npz", Z=ok, y=np.ones(4)), "expected arrays X and y .* found Z, y"),
        (_write(tmp_path / "obj.npz", X=sp.csr_matrix(ok), y=np.ones(4)),
         "obj.npz: array 'X' holds Python objects"),
        (_write(tmp_path / "len.npz", X=ok, y=np.ones(3)), "y has 3 labels but X has 4 rows"),
        (_write(tmp_path / "dim.npz", X=np.ones(4), y=np.ones(4)), "'X' must be a 2-D real array"),
        (_write(tmp_path / "str.npz", X=np.array([["a"]]), y=np.ones(1)),
         "'X' must be a 2-D real array, got dtype <U1"),
        (_write(tmp_path / "empty.npz", X=np.ones((0, 2)), y=np.ones(0)), "the data set is empty"),
        (str(tmp_path / "d.svmx"), "not found"),
    ]
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    cases.append((str(tmp_path / "junk.npz"), "junk.npz: not an .npz archive"))
    (tmp_path / "x.csv").write_text("1,2\n")
    cases.append((str(tmp_path / "x.csv"), "unknown data file type"))
    sp.save_npz(tmp_path / "csc.npz", sp.csc_matrix(ok), compressed=False)
    with zipfile.ZipFile(tmp_path / "csc.npz", "a") as zf, zf.open("y.npy", "w") as f:
        np.lib.format.write_array(f, np.ones(4))
    cases.append((str(tmp_path / "csc.npz"), "sparse format 'csc' is not supported"))
    cases.append((f"{tmp_path}/nothing-*.npz", "no data file matches"))
    cases.append(("", "empty file name in the data spec"))
    cases.append((f"{tmp_path}/a.npz+", "empty file name in the data spec"))
    save_npz(tmp_path / "a.npz", ok, np.ones(4))
    save_npz(tmp_path / "b.npz", np.ones((4, 3)), np.ones(4))
    cases.append((f"{tmp_path}/a.npz+{tmp_path}/b.npz",
                  "feature counts differ between files: .*a.npz has 2, .*b.npz has 3"))
    cases.append((f"{tmp_path}/a.npz:features=3", "option 'features' does not apply to .npz"))
    for spec, message in cases:
        with pytest.raises(UsageError, match=message):
            parse_data_spec(spec)


def test_corrupt_csr_rows(tmp_path):
    np.savez(tmp_path / "c.npz", data=np.ones(3), indices=np.array([0, 5, 1]),
             indptr=np.array([0, 1, 2, 3]), shape=np.array([3, 4]), format=np.array("csr"),
             y=np.ones(3))
    src = parse_data_spec(str(tmp_path / "c.npz"))
    assert src.read_rows([(0, 1)])[0].shape == (1, 4)
    with pytest.raises(UsageError, match="row 1 has feature index 5, outside 0..3"):
        src.read_rows([(0, 3)])


def test_unreadable_file(tmp_path, monkeypatch):
    # permission bits do not stop root (CI runs as root): deny access the way the OS would
    save_npz(tmp_path / "u.npz", np.ones((2, 2)), np.ones(2))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path).endswith("u.npz")
                        else real_access(path, mode))
    with pytest.raises(UsageError, match="data file is not readable: .*u.npz"):
        parse_data_spec(str(tmp_path / "u.npz"))


def test_file_whose_reads_fail(tmp_path):
    # a path that opens but cannot be read, whoever runs the test
    (tmp_path / "mem.svm").symlink_to("/proc/self/mem")
    with pytest.raises(UsageError, match=r"cannot read data file .*mem\.svm"):
        parse_data_spec(str(tmp_path / "mem.svm"))


def test_bad_ranges_and_dtype(tmp_path):
    save_npz(tmp_path / "r.npz", np.ones((5, 2)), np.ones(5))
    src = NpzSource(tmp_path / "r.npz")
    with pytest.raises(UsageError, match=r"row range \[3, 9\) is outside"):
        src.read_rows([(3, 9)])
    with pytest.raises(UsageError, match=r"row range \[3, 2\)"):
        src.read_rows([(3, 2)])
    with pytest.raises(UsageError, match="unknown dtype 'int8'"):
        src.read_rows([(0, 1)], dtype="int8")
