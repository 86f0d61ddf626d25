"""mpigc convert: compressed svmlight and any data spec to the memory-mappable npz layout;
mpigc bench data on a small file (its keys and its verdicts, not its speed)."""

import bz2
import json

import numpy as np

from mpigc.data import parse_data_spec
from mpigc.data.npz import NpzSource
from mpiutil import assert_ok, run_cli

TEXT = "".join(f"{i % 2} {i % 5 + 1}:{i * 0.25} 7:{-i}\n" for i in range(200))


def test_compressed_svmlight_becomes_a_mapped_npz(tmp_path):
    (tmp_path / "a.svm").write_text(TEXT)
    with bz2.open(tmp_path / "a.svm.bz2", "wt") as f:
        f.write(TEXT)
    res = assert_ok(run_cli(["convert", tmp_path / "a.svm.bz2", tmp_path / "a.npz"]))
    assert "200 rows x 7 features (CSR)" in res.stdout
    out = NpzSource(tmp_path / "a.npz")
    assert all(m.mappable for m in out.m.values())     # workers map it, nothing to parse
    X, y = out.read_rows([(0, 200)])
    Xr, yr = parse_data_spec(str(tmp_path / "a.svm")).read_rows([(0, 200)])
    np.testing.assert_array_equal(X.toarray(), Xr.toarray())
    np.testing.assert_array_equal(y, yr)
    assert [p.name for p in tmp_path.iterdir()].count("a.npz") == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_any_spec_converts(tmp_path):
    assert_ok(run_cli(["convert", "synthetic:n=50,d=3,seed=2", tmp_path / "s.npz"]))
    X, _ = NpzSource(tmp_path / "s.npz").read_rows([(0, 50)])
    np.testing.assert_array_equal(X, parse_data_spec("synthetic:n=50,d=3,seed=2")
                                  .read_rows([(0, 50)])[0])


def test_bench_data_reports_every_number(tmp_path):
    res = assert_ok(run_cli(["bench", "data", "--rows", "3000", "--cols", "200", "--nnz", "8",
                             "--repeat", "1", "--ranks", "2", "--json"], timeout=300,
                            env={"OMP_NUM_THREADS": "1"}))
    out = json.loads(res.stdout)
    for key in ("svmlight_mbytes_per_s", "sklearn_mbytes_per_s", "speedup_vs_sklearn",
                "startup_synthetic_s", "startup_svmlight_s"):
        assert out[key] > 0, (key, out)
    assert out["speedup_vs_sklearn"] == out["svmlight_mbytes_per_s"] / out["sklearn_mbytes_per_s"]
    assert set(out["meets"]) == {"speedup_vs_sklearn", "startup_synthetic_s",
                                 "startup_svmlight_s"}
    assert set(out["startup_stages_s"]) >= {"kernel_load", "parser_load"}
    # the warmup before the start-ups built the ahead-of-time module: no rank needs Numba
    assert out["aot_module"] and not out["startup_stages_s"]["numba_imported"], out
