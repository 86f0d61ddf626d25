"""GD, Nesterov and L-BFGS: convergence to SciPy's L-BFGS-B optimum, look-ahead points,
line-search bookkeeping, stopping rules, exact resume."""

import numpy as np
import pytest
from scipy.optimize import minimize

from mpigc.errors import UsageError
from mpigc.models import gradient, lipschitz_bound, objective, spectral_norm_sq
from mpigc.optim import (
    CONVERGED,
    GD,
    LBFGS,
    LINE_SEARCH_FAILED,
    Nesterov,
    gradient_tol,
    make_optimizer,
)
from mpigc.scaling import column_stats, feature_scale, scaled, to_user


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


# -- L-BFGS ------------------------------------------------------------------------------
def sklearn_problem(name):
    """(model, X, y, l2) of bench convergence's problems (a) and (c): breast_cancer
    standardized and diabetes as bundled, each with a ones column."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        X, y, model, l2 = (X - X.mean(0)) / X.std(0), 2.0 * y - 1.0, "logistic", 1e-3
    else:
        X, y = load_diabetes(return_X_y=True)
        model, l2 = "linear", 1e-4
    return model, np.column_stack([X, np.ones(len(X))]), y, l2


def exact(model, X, y, l2):
    return lambda w: (objective(model, X, y, w, l2), gradient(model, X, y, w, l2))


@pytest.mark.parametrize("name, tol", [("breast_cancer", 1e-9), ("diabetes", 1e-7)])
def test_lbfgs_reaches_scipys_optimum_in_as_many_evaluations(name, tol):
    # both optimizers in the feature-scaled coordinates that mpigc train uses
    model, X, y, l2 = sklearn_problem(name)
    d = X.shape[1]
    scale = feature_scale(column_stats([X], d))
    evaluate = scaled(exact(model, X, y, l2), scale)
    ref = minimize(exact(model, X, y, l2), np.zeros(d), jac=True, method="L-BFGS-B",
                   options=dict(gtol=1e-12, ftol=0.0, maxiter=100000))
    target = ref.fun + 1e-6 * abs(ref.fun)
    values = []
    minimize(lambda v: values.append(evaluate(v)) or values[-1], np.zeros(d), jac=True,
             method="L-BFGS-B", options=dict(gtol=1e-12, ftol=0.0, maxiter=10000))
    scipy_evals = next(i + 1 for i, (f, _) in enumerate(values) if f <= target)

    mine = []
    opt = make_optimizer("lbfgs", None, np.zeros(d), history=10)
    converged = gradient_tol(tol, scale)  # diabetes: F* ~ 1476, so 1e-7 is near rounding
    reason = None
    while reason is None and opt.iteration < 500:
        reason = opt.step(lambda v: mine.append(evaluate(v)) or mine[-1], converged)
    assert reason == CONVERGED
    w = to_user(opt.w, scale)
    assert np.max(np.abs(gradient(model, X, y, w, l2))) <= tol * (1 + 1e-9)
    np.testing.assert_allclose(w, ref.x, rtol=0, atol=1e-6 * np.abs(ref.x).max())
    assert abs(opt.f - ref.fun) <= 1e-12 * abs(ref.fun)
    my_evals = next(i + 1 for i, (f, _) in enumerate(mine) if f <= target)
    assert my_evals <= 1.5 * scipy_evals


def test_lbfgs_records_which_evaluation_it_kept():
    X, y = logistic_problem(seed=3)
    evaluate = exact("logistic", X, y, 1e-2)
    opt = LBFGS(np.zeros(8), history=3)
    assert opt.step(evaluate) is None
    first = opt.last
    assert first.line_search[0] is False and all(first.line_search[1:])
    assert first.accepted == len(first.line_search) - 1
    for _ in range(6):
        opt.step(evaluate)
        assert opt.last.line_search and all(opt.last.line_search)
    assert len(opt.S) == 3  # the oldest pairs dropped
    np.testing.assert_array_equal(opt.g, evaluate(opt.w)[1])


def test_lbfgs_state_round_trip_is_bit_for_bit(tmp_path):
    X, y = logistic_problem(seed=2)
    evaluate = exact("logistic", X, y, 1e-3)
    full = LBFGS(np.zeros(8), history=4)
    fresh = LBFGS(np.zeros(8), history=4).state_dict()  # before any evaluation
    for _ in range(5):
        full.step(evaluate)
    np.savez(tmp_path / "ckpt.npz", **full.state_dict())
    for _ in range(8):
        full.step(evaluate)

    resumed = LBFGS(np.zeros(8), history=4)
    with np.load(tmp_path / "ckpt.npz") as z:
        resumed.load_state_dict(dict(z))
    assert resumed.iteration == 5 and len(resumed.S) == 4
    for _ in range(8):
        resumed.step(evaluate)
    assert resumed.w.tobytes() == full.w.tobytes()
    assert resumed.g.tobytes() == full.g.tobytes()
    assert resumed.S.tobytes() == full.S.tobytes()
    again = LBFGS(np.zeros(8), history=4)
    again.load_state_dict(fresh)
    assert again.g is None


def test_lbfgs_skips_a_pair_without_safe_curvature():
    # f depends on x0 only, but the reported gradient gains a huge x1 part away from the
    # start: the step satisfies the Wolfe conditions on the x0 line, and s.y = 1 is tiny
    # next to y.y = 1e20
    def evaluate(x):
        return 0.5 * x[0] ** 2, np.array([x[0], 0.0 if x[0] == 1.0 else 1e10])

    opt = LBFGS([1.0, 0.0])
    assert opt.step(evaluate) is None
    np.testing.assert_array_equal(opt.w, [0.0, 0.0])
    assert len(opt.S) == 0

    def quadratic(x):
        return 0.5 * x @ x, x.copy()

    opt = LBFGS([1.0, 2.0])
    opt.step(quadratic)
    assert len(opt.S) == 1


def test_lbfgs_reports_a_failed_line_search():
    def wrong_sign(x):  # the gradient points uphill: no step decreases f
        return 0.5 * x @ x, -x

    opt = LBFGS([1.0, 1.0])
    assert opt.step(wrong_sign) == LINE_SEARCH_FAILED
    np.testing.assert_array_equal(opt.w, [1.0, 1.0])
    assert opt.last.accepted == 0 and len(opt.last.line_search) > 2  # only the start kept
    assert opt.iteration == 0


def test_gradient_tol_is_the_max_norm_in_user_coordinates():
    assert gradient_tol(None) is None
    assert gradient_tol(0.5)(np.array([0.5, -0.5]))
    assert not gradient_tol(0.5)(np.array([0.0, -0.51]))
    # optimizer gradient dF/dv = dF/dw / scale: the rule multiplies it back
    rule = gradient_tol(1.0, scale=np.array([10.0, 1.0]))
    assert not rule(np.array([0.2, 0.0])) and rule(np.array([0.1, -1.0]))


@pytest.mark.parametrize("kind", ["gd", "nesterov"])
def test_first_order_steps_stop_at_the_converged_point(kind):
    X, y = logistic_problem(seed=4)
    l2 = 1e-2
    evaluate = exact("logistic", X, y, l2)
    lr = 1.0 / lipschitz_bound("logistic", spectral_norm_sq(X) / X.shape[0], l2)
    stepped, driven = (make_optimizer(kind, lr, np.zeros(8), mu=l2) for _ in range(2))
    for _ in range(5):  # step(evaluate) is point() / update() around one evaluation
        stepped.step(evaluate)
        driven.update(evaluate(driven.point())[1])
    assert stepped.w.tobytes() == driven.w.tobytes()
    reason, points = None, []
    rule = gradient_tol(1e-6)
    while reason is None:
        reason = stepped.step(lambda w: points.append(w.copy()) or evaluate(w), rule)
    assert reason == CONVERGED
    assert stepped.w.tobytes() == points[-1].tobytes()
    assert np.max(np.abs(evaluate(stepped.w)[1])) <= 1e-6


def test_lbfgs_bad_inputs():
    with pytest.raises(UsageError, match="--history must be at least 1, got 0"):
        LBFGS(np.zeros(2), history=0)
    with pytest.raises(UsageError, match="--tol must be a finite number >= 0, got -1"):
        gradient_tol(-1.0)
    opt = LBFGS(np.zeros(2), history=5)
    opt.step(lambda x: (0.5 * (x - 1) @ (x - 1), x - 1))
    short = LBFGS(np.zeros(2), history=1)
    state = opt.state_dict()
    state["S"] = state["Y"] = np.ones((2, 2))
    with pytest.raises(UsageError, match="checkpoint holds 2 curvature pairs, this run keeps "
                                         "at most 1"):
        short.load_state_dict(state)
    with pytest.raises(UsageError, match="checkpoint holds optimizer 'lbfgs', this run uses "
                                         "'gd'"):
        GD(0.1, np.zeros(2)).load_state_dict(opt.state_dict())
