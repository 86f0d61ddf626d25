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
    for name, e in result["kernels"].items():
        assert e["speedup"] == pytest.approx(e["reference_seconds"] / e["seconds"])
        assert ("bandwidth_fraction" in e) == (not name.endswith("csr"))
    assert result["csr_nnz"] == 64 * bench.CSR_ROW_NNZ
    assert 0 < result["cached_first_call_s"] < 60


@pytest.mark.parametrize("model", ("logistic", "linear"))
def test_problem_and_reference(model):
    problems, y = bench.make_problem(50, 3)
    X, w = problems["csr"]
    assert np.all(np.diff(X.indices.reshape(50, -1), axis=1) > 0)  # distinct, sorted columns
    loss, grad = bench.reference(model, X, y, w)
    loss_d, grad_d = bench.reference(model, X.toarray(), y, w)
    assert loss == pytest.approx(loss_d, rel=1e-12)
    assert np.allclose(grad, grad_d, rtol=1e-12, atol=0)


def test_bad_sizes():
    with pytest.raises(UsageError, match="--rows"):
        bench.main(Namespace(json=True, rows=0, cols=None, repeat=1))
    with pytest.raises(UsageError, match="--repeat"):
        bench.main(Namespace(json=True, rows=10, cols=2, repeat=0))
