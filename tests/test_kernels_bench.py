"""Smoke test of ``mpigc bench kernels`` on a tiny problem (the numbers are not checked)."""

import json
from argparse import Namespace
from functools import partial

import numpy as np
import pytest

from mpigc.bench import kernels as bench
from mpigc.errors import UsageError


@pytest.mark.timeout(120)
def test_bench_json_fields(capsys, monkeypatch):
    # one fresh interpreter per first-call measurement instead of three: keeps this quick
    monkeypatch.setattr(bench, "first_call_seconds", partial(bench.first_call_seconds, tries=1))
    assert bench.main(Namespace(json=True, rows=64, cols=4, repeat=1)) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["kernels"]) == {f"{m}/{layout}" for m in ("logistic", "linear")
                                      for layout in ("dense64", "dense32", "csr")}
    for e in result["kernels"].values():
        assert e["speedup"] == pytest.approx(e["reference_seconds"] / e["seconds"])
        assert e["bandwidth_fraction"] == pytest.approx(e["gbytes_per_s"] / e["read_gbytes_per_s"])
        assert e["rows_per_s"] == pytest.approx(64 / e["seconds"])
        assert e["in_cache_seconds"] > 0 and e["compute_bound_fraction"] > 0
    ceilings = result["csr_ceilings"]
    for name in ("read", "gather_dot", "scatter", "dot_then_scatter"):
        c = ceilings[name]
        assert c["gbytes_per_s"] == pytest.approx(result["layouts"]["csr"]["bytes"]
                                                  / c["seconds"] / 1e9)
        assert c["in_cache_seconds"] > 0
    assert 0 < ceilings["dot_and_scatter_fraction"]
    assert ceilings["floor_fraction"] == pytest.approx(
        ceilings["dot_then_scatter"]["gbytes_per_s"]
        / result["kernels"]["linear/csr"]["read_gbytes_per_s"])
    assert result["csr_nnz"] == 64 * bench.CSR_ROW_NNZ
    # CSR bytes are data + indices (float64 + int32 per entry), not indptr
    assert result["layouts"]["csr"] == {"rows": 64, "bytes": 64 * bench.CSR_ROW_NNZ * 12}
    assert result["layouts"]["dense32"] == {"rows": 64, "bytes": 64 * 4 * 4}
    assert 0 < result["cached_first_call_s"] < 60
    assert result["cached_first_call_path"] in {"aot", "numba"}


@pytest.mark.timeout(120)
def test_bench_default_sizes(monkeypatch):
    # the default path: each layout its own row count, from the cache size and a floor
    monkeypatch.setattr(bench, "first_call_seconds", lambda *a, **k: (0.0, 0.0, 0.0, "numba"))
    monkeypatch.setattr(bench, "last_level_cache_bytes", lambda: 512)
    monkeypatch.setattr(bench, "MIN_MATRIX_BYTES", 1024)
    result = bench.run(None, 4, 1)
    assert {k: v["rows"] for k, v in result["layouts"].items()} == {
        "dense64": 64, "dense32": 128, "csr": 6}
    assert all(v["bytes"] >= 2048 for v in result["layouts"].values())
    assert result["last_level_cache_bytes"] == 512 and not result["memory_limited"]


@pytest.mark.parametrize("model", ("logistic", "linear"))
def test_problem_and_reference(model):
    problems, y = bench.make_problem(dict.fromkeys(bench.LAYOUTS, 50), 3)
    X, w = problems["csr"]
    assert np.all(np.diff(X.indices.reshape(50, -1), axis=1) > 0)  # distinct, sorted columns
    loss, grad = bench.reference(model, X, y, w)
    loss_d, grad_d = bench.reference(model, X.toarray(), y, w)
    assert loss == pytest.approx(loss_d, rel=1e-12)
    assert np.allclose(grad, grad_d, rtol=1e-12, atol=0)


def test_last_level_cache_from_sysfs(tmp_path):
    for i, (level, kind, size) in enumerate([(1, "Data", "32K"), (1, "Instruction", "32K"),
                                              (2, "Unified", "1024K"), (3, "Unified", "480M")]):
        (tmp_path / f"index{i}").mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (tmp_path / f"index{i}" / name).write_text(f"{value}\n")
    assert bench.last_level_cache_bytes(str(tmp_path)) == 480 * 2**20
    assert bench.l2_bytes(str(tmp_path)) == 2**20
    assert bench.last_level_cache_bytes(str(tmp_path / "missing")) == 0
    assert bench.l2_bytes(str(tmp_path / "missing")) == bench.DEFAULT_L2_BYTES


def test_csr_ceiling_loops_compute_what_they_bound():
    problems, _ = bench.make_problem(dict.fromkeys(bench.LAYOUTS, 20), 3)
    X, w = problems["csr"]
    assert bench.csr_gather_dot(X.data, X.indices, w) == pytest.approx(X.data @ w[X.indices])
    grad = np.zeros(X.shape[1])
    bench.csr_scatter(X.data, X.indices, 0.5, grad)
    assert np.allclose(grad, 0.5 * np.asarray(X.sum(axis=0)).ravel(), rtol=1e-12)
    # the floor loop: the dots' sum, and the gradient of sum_r c (x_r . w)^2 / 2
    grad = np.zeros(X.shape[1])
    total = bench.csr_dot_then_scatter(X.data, X.indices, X.indptr, w, 0.5, grad)
    assert total == pytest.approx((X @ w).sum())
    assert np.allclose(grad, 0.5 * (X.T @ (X @ w)), rtol=1e-12)
    assert bench.numba_csr_read(X.data, X.indices) == pytest.approx(X.data.sum()
                                                                    + X.indices.sum())


def test_in_cache_seconds_scales_to_the_whole_matrix():
    calls = []
    seconds = bench.in_cache_seconds(calls.append, (1000, 100.0), 4000, 1)
    # 3/4 of 4000 bytes holds 30 rows of 100 bytes: 33 calls of 30 rows, plus a warm-up
    assert calls == [30] * 34 and seconds >= 0


def test_default_sizes_from_cache_and_memory():
    # 4x a 480 MiB cache per matrix when memory allows; at least 200 MB for a small cache
    rows, nbytes, limited = bench.default_sizes(128, 480 * 2**20, 64 * 2**30)
    assert not limited and nbytes == 4 * 480 * 2**20
    assert rows["dense64"] * 128 * 8 >= nbytes and rows["dense32"] == 2 * rows["dense64"]
    assert bench.default_sizes(128, 2**20, 64 * 2**30)[1] == bench.MIN_MATRIX_BYTES
    # shrunk so the three matrices take at most half of the available memory
    rows, nbytes, limited = bench.default_sizes(128, 480 * 2**20, 4 * 2**30)
    assert limited and 3 * nbytes <= 0.5 * 4 * 2**30


def test_bad_sizes():
    with pytest.raises(UsageError, match="--rows"):
        bench.main(Namespace(json=True, rows=0, cols=None, repeat=1))
    with pytest.raises(UsageError, match="--repeat"):
        bench.main(Namespace(json=True, rows=10, cols=2, repeat=0))
