"""``mpigc train`` modes: deadline, iteration timeout, linear and sparse data, files, float32."""

import numpy as np
import pytest

from mpigc.stragglers import parse_stragglers
from mpiutil import train

SMALL = "synthetic:n=1200,d=24,seed=3"
SLOW_THREE = "persistent:frac=0.75,slowdown=50"  # 3 of 4 workers 50x slower


def test_psgc_deadline_decodes_what_is_covered(tmp_path):
    # the slow workers finish no chunk by the deadline, the fast one finishes its three:
    # three chunks of four are recovered
    # (generous margins: a loaded machine may start a worker several ms late)
    summary, records = train(4, ["--scheme", "psgc", "--data", SMALL, "--iterations", 4,
                                 "--stragglers", SLOW_THREE, "--chunk-time", 0.004,
                                 "--deadline", 0.06, "--verify"], tmp_path)
    slow = parse_stragglers(SLOW_THREE, 4, 0).factors(0) > 1
    for r in records:
        assert r["trigger"] == "deadline" and r["duration_s"] >= 0.06
        assert all(s == 0 for s, is_slow in zip(r["state"], slow) if is_slow)
        assert all(s == 3 for s, is_slow in zip(r["state"], slow) if not is_slow)
        assert r["recovered_fraction"] == 0.75
        assert 1e-8 < r["grad_rel_err"] < 1
    assert summary["config"]["deadline"] == 0.06


def test_gc_deadline_least_squares_from_finished_workers(tmp_path):
    summary, records = train(4, ["--scheme", "gc", "--data", SMALL, "--iterations", 3,
                                 "--stragglers", SLOW_THREE, "--chunk-time", 0.004,
                                 "--deadline", 0.06, "--verify"], tmp_path)
    for r in records:
        assert r["trigger"] == "deadline"
        assert sorted(r["state"]) == [0, 0, 0, 3]
        assert 1e-8 < r["grad_rel_err"] < 1


def test_iteration_that_cannot_fire_times_out(tmp_path):
    """Adaptive iteration timeout: 10 x the first report's time, at least its floor."""
    from mpigc.runtime.ps import ITERATION_TIMEOUT_FLOOR

    spec = "fail:p=0.3"
    summary, records = train(3, ["--scheme", "uncoded", "--data", SMALL, "--iterations", 4,
                                 "--stragglers", spec], tmp_path)
    model = parse_stragglers(spec, 3, 0)
    failed = [np.isinf(model.factors(t)) for t in range(4)]
    assert any(f.any() for f in failed)
    for r, f in zip(records, failed):
        assert r["trigger"] == ("timeout" if f.any() else "exact")
        assert [s == 0 for s in r["state"]] == f.tolist()
        if f.any():
            assert r["duration_s"] >= ITERATION_TIMEOUT_FLOOR and r["recovered_fraction"] < 1
    assert summary["triggers"]["timeout"] == sum(f.any() for f in failed)


@pytest.mark.parametrize("scheme", ["psgc", "allreduce"])
def test_linear_model_on_sparse_data(scheme, tmp_path):
    data = "synthetic:n=1500,d=40,density=0.1,model=linear,seed=5"
    summary, records = train(3, ["--scheme", scheme, "--model", "linear", "--data", data,
                                 "--iterations", 8, "--optimizer", "nesterov", "--verify",
                                 "--stragglers", "exp:mean=1", "--chunk-time", 0.001],
                             tmp_path)
    assert summary["max_grad_rel_err"] <= 1e-10
    assert summary["accuracy"] is None
    losses = [r["loss"] for r in records]
    assert summary["final_loss"] < losses[0] / 2


def test_npz_and_svmlight_files_and_float32(tmp_path):
    from sklearn.datasets import dump_svmlight_file

    from mpigc.data import save_npz

    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 12))
    y = (X @ rng.standard_normal(12) + 0.3 * rng.standard_normal(600) > 0).astype(float)
    save_npz(tmp_path / "d.npz", X, y)
    dump_svmlight_file(X, y, str(tmp_path / "d.svm"), zero_based=False)
    common = ["--scheme", "psgc", "--ell", 2, "--iterations", 5, "--verify", "--lr", 0.5]
    a, _ = train(3, common + ["--data", tmp_path / "d.npz"], tmp_path / "npz")
    b, _ = train(3, common + ["--data", tmp_path / "d.svm"], tmp_path / "svm")
    c, _ = train(3, common + ["--data", tmp_path / "d.npz", "--dtype", "float32"],
                 tmp_path / "f32")
    assert a["max_grad_rel_err"] <= 1e-10 and b["max_grad_rel_err"] <= 1e-10
    assert a["final_loss"] == pytest.approx(b["final_loss"], rel=1e-12)
    # float32 features: gradients agree to single precision only
    assert 1e-12 < c["max_grad_rel_err"] < 1e-5
    assert c["final_loss"] == pytest.approx(a["final_loss"], rel=1e-5)


@pytest.mark.parametrize("scheme, assignment, ordering, load, ell", [
    ("psgc", "regular", "random", 3, 2),
    ("psgc", "frc", "natural", 2, 2),
    ("gc", "frc", "optimal", 2, 1),  # Tandon's group code: one finished worker per group
])
def test_other_assignments_and_orderings_are_exact(scheme, assignment, ordering, load, ell, tmp_path):
    summary, records = train(4, ["--scheme", scheme, "--assignment", assignment, "--ordering",
                                 ordering, "--load", load, "--ell", ell, "--data", SMALL,
                                 "--iterations", 4, "--stragglers", "exp:mean=2",
                                 "--chunk-time", 0.002, "--verify"], tmp_path)
    assert summary["config"]["assignment"] == assignment
    assert summary["max_grad_rel_err"] <= 1e-10
    assert all(r["trigger"] == "exact" for r in records)
