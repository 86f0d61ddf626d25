"""GD and Nesterov: convergence to the L-BFGS optimum, look-ahead points, exact resume."""

import numpy as np
import pytest
from scipy.optimize import minimize

from mpigc.errors import UsageError
from mpigc.models import gradient, lipschitz_bound, objective, spectral_norm_sq
from mpigc.optim import GD, Nesterov, make_optimizer


def logistic_problem(seed=0, n=300, d=8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 2.0, d)
    w_star = rng.standard_normal(d)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-X @ w_star)), 1.0, -1.0)
    return X, y


def lbfgs_optimum(X, y, l2):
    res = minimize(lambda w: objective("logistic", X, y, w, l2), np.zeros(X.shape[1]),
                   jac=lambda w: gradient("logistic", X, y, w, l2), method="L-BFGS-B",
                   options=dict(ftol=1e-15, gtol=1e-12, maxiter=10000))
    assert np.linalg.norm(gradient("logistic", X, y, res.x, l2)) < 1e-8
    return res.fun


def run(opt, X, y, l2, iterations):
    for _ in range(iterations):
        opt.update(gradient("logistic", X, y, opt.point(), l2))
    return objective("logistic", X, y, opt.w, l2)


@pytest.mark.parametrize("l2", [1e-2, 0.0])
@pytest.mark.parametrize("kind, iterations", [("gd", 3000), ("nesterov", 600)])
def test_reaches_the_lbfgs_optimum(kind, iterations, l2):
    X, y = logistic_problem()
    f_star = lbfgs_optimum(X, y, l2)
    L = lipschitz_bound("logistic", spectral_norm_sq(X) / X.shape[0], l2)
    opt = make_optimizer(kind, 1.0 / L, np.zeros(X.shape[1]), mu=l2)
    f = run(opt, X, y, l2, iterations)
    assert f >= f_star * (1 - 1e-12)
    assert (f - f_star) / f_star <= 1e-6


def test_nesterov_is_faster_than_gd():
    X, y = logistic_problem(seed=1)
    l2 = 1e-3
    f_star = lbfgs_optimum(X, y, l2)
    lr = 1.0 / lipschitz_bound("logistic", spectral_norm_sq(X) / X.shape[0], l2)
    gaps = [run(opt, X, y, l2, 200) - f_star
            for opt in (GD(lr, np.zeros(8)), Nesterov(lr, np.zeros(8), mu=l2))]
    assert gaps[1] < gaps[0] / 10


def test_points_follow_the_schemes():
    w0 = np.array([1.0, -2.0])
    g1, g2 = np.array([0.5, 0.25]), np.array([-1.0, 1.0])
    gd = GD(0.1, w0)
    assert gd.point() is gd.w
    np.testing.assert_array_equal(gd.update(g1), w0 - 0.1 * g1)
    nes = Nesterov(0.1, w0)
    np.testing.assert_array_equal(nes.point(), w0)
    x1 = w0 - 0.1 * g1                       # first step: no momentum (t_1 = 1)
    np.testing.assert_array_equal(nes.update(g1), x1)
    np.testing.assert_array_equal(nes.point(), x1)
    t2 = (1 + np.sqrt(5)) / 2
    t3 = (1 + np.sqrt(1 + 4 * t2 ** 2)) / 2
    x2 = x1 - 0.1 * g2
    np.testing.assert_allclose(nes.update(g2), x2, rtol=0, atol=0)
    np.testing.assert_allclose(nes.point(), x2 + (t2 - 1) / t3 * (x2 - x1), rtol=1e-15)
    strong = Nesterov(0.25, w0, mu=1.0)      # q = sqrt(mu lr) = 1/2 -> momentum 1/3
    assert strong.momentum() == pytest.approx(1 / 3)


@pytest.mark.parametrize("kind", ["gd", "nesterov"])
def test_state_round_trip_is_bit_for_bit(tmp_path, kind):
    X, y = logistic_problem(seed=2)
    l2 = 1e-2

    def step(opt):
        opt.update(gradient("logistic", X, y, opt.point(), l2))

    full = make_optimizer(kind, 0.3, np.zeros(8), mu=l2)
    for _ in range(10):
        step(full)
    np.savez(tmp_path / "ckpt.npz", **full.state_dict())   # what a checkpoint stores
    for _ in range(25):
        step(full)

    resumed = make_optimizer(kind, 0.3, np.zeros(8), mu=l2)
    with np.load(tmp_path / "ckpt.npz") as z:
        resumed.load_state_dict(dict(z))
    assert resumed.iteration == 10
    for _ in range(25):
        step(resumed)
    assert resumed.w.tobytes() == full.w.tobytes()
    assert resumed.point().tobytes() == full.point().tobytes()
    assert resumed.state_dict().keys() == full.state_dict().keys()


def test_bad_inputs():
    for lr in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(UsageError, match="learning rate must be a finite number > 0"):
            GD(lr, np.zeros(2))
    with pytest.raises(UsageError, match="strong-convexity modulus must be >= 0"):
        Nesterov(0.1, np.zeros(2), mu=-1)
    with pytest.raises(UsageError, match="unknown optimizer 'adam'"):
        make_optimizer("adam", 0.1, np.zeros(2))
    gd, nes = GD(0.1, np.zeros(2)), Nesterov(0.1, np.zeros(3))
    with pytest.raises(UsageError, match="checkpoint holds optimizer 'gd', this run uses "
                                         "'nesterov'"):
        nes.load_state_dict(gd.state_dict())
    with pytest.raises(UsageError, match=r"checkpoint model has shape \(2,\), this run needs "
                                         r"\(3,\)"):
        nes.load_state_dict(Nesterov(0.1, np.zeros(2)).state_dict())
    state = nes.state_dict()
    del state["t"]
    with pytest.raises(UsageError, match="checkpoint lacks optimizer field 't'"):
        nes.load_state_dict(state)
