"""mpigc.kernels.loss_grad against NumPy/SciPy references, edge cases and input checks."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit

from mpigc.errors import UsageError
from mpigc.kernels import loss_grad, warmup
from mpigc.kernels._compile import SPECIALISATIONS

MODELS = ("logistic", "linear")
LAYOUTS = ("dense64", "dense32", "csr", "csr64")
# float32 X: the products and sums are float64, only the rounding of X to float32 differs,
# and the reference uses the same float32 values widened exactly to float64, so the
# tolerance is the float64 one; an end-to-end comparison with float64 data is looser.
RTOL = 1e-10


def reference(model, X, y, w):
    """Loss sum and gradient sum in float64 with NumPy/SciPy, two passes over X."""
    Xd = X.toarray() if sp.issparse(X) else X
    z = Xd.astype(np.float64) @ w
    if model == "logistic":
        m = y * z
        return np.logaddexp(0.0, -m).sum(), Xd.T.astype(np.float64) @ (-y * expit(-m))
    r = z - y
    return 0.5 * r @ r, Xd.T.astype(np.float64) @ r


def make(layout, n=37, d=11, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    if layout.startswith("csr"):
        X = sp.random(n, d, density=density, format="csr", random_state=seed)
        X.data = rng.standard_normal(X.nnz)
        if layout == "csr64":
            X.indices = X.indices.astype(np.int64)
            X.indptr = X.indptr.astype(np.int64)
    else:
        X = rng.standard_normal((n, d)).astype(np.float32 if layout == "dense32" else np.float64)
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return X, y, rng.standard_normal(d)


def rel_err(a, b):
    return np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("model", MODELS)
def test_intercept_is_one_more_entry_of_the_same_pass(model, layout):
    """fit_intercept: the margin gains w[d], grad[d] gains the sum of the residuals, and
    the rest equals the reference on X with a column of ones (which X never gets)."""
    X, y, w = make(layout, n=53)  # 53 rows: three full blocks and a partial one
    w = np.append(w, 0.7)
    grad = np.zeros(X.shape[1] + 1)
    loss = loss_grad(model, X, y, w, 0, X.shape[0], grad, fit_intercept=True)
    ones = np.ones((X.shape[0], 1))
    Xd = X.toarray() if sp.issparse(X) else X.astype(np.float64)
    ref_loss, ref_grad = reference(model, np.hstack([Xd, ones]), y, w)
    assert rel_err(loss, ref_loss) <= RTOL
    assert rel_err(grad, ref_grad) <= RTOL
    with pytest.raises(UsageError, match="length"):
        loss_grad(model, X, y, w[:-1], 0, 1, grad[:-1], fit_intercept=True)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("model", MODELS)
def test_matches_reference(model, layout):
    X, y, w = make(layout)
    grad = np.zeros(X.shape[1])
    loss = loss_grad(model, X, y, w, 0, X.shape[0], grad)
    ref_loss, ref_grad = reference(model, X, y, w)
    assert rel_err(loss, ref_loss) <= RTOL
    assert rel_err(grad, ref_grad) <= RTOL


@pytest.mark.parametrize("model", MODELS)
def test_float32_against_float64_data(model):
    """Documented float32 tolerance: X rounded to float32 (2**-24 relative per entry)."""
    X, y, w = make("dense64", n=200, d=30)
    g32, g64 = np.zeros(30), np.zeros(30)
    l32 = loss_grad(model, X.astype(np.float32), y, w, 0, 200, g32)
    l64 = loss_grad(model, X, y, w, 0, 200, g64)
    assert rel_err(l32, l64) <= 1e-6
    assert rel_err(g32, g64) <= 1e-6


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("model", MODELS)
def test_split_ranges_accumulate(model, layout):
    X, y, w = make(layout)
    n, d = X.shape
    whole, parts = np.zeros(d), np.zeros(d)
    total = loss_grad(model, X, y, w, 0, n, whole)
    split = loss_grad(model, X, y, w, 0, 13, parts) + loss_grad(model, X, y, w, 13, n, parts)
    assert rel_err(split, total) <= RTOL
    assert rel_err(parts, whole) <= RTOL


@pytest.mark.parametrize("layout", LAYOUTS)
def test_adds_into_grad(layout):
    X, y, w = make(layout)
    start = np.arange(X.shape[1], dtype=float)
    grad = start.copy()
    loss_grad("linear", X, y, w, 0, X.shape[0], grad)
    assert rel_err(grad - start, reference("linear", X, y, w)[1]) <= RTOL


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("model", MODELS)
def test_empty_range_and_one_row(model, layout):
    X, y, w = make(layout)
    grad = np.full(X.shape[1], 7.0)
    assert loss_grad(model, X, y, w, 5, 5, grad) == 0.0
    assert np.all(grad == 7.0)
    grad[:] = 0.0
    loss = loss_grad(model, X, y, w, 4, 5, grad)
    ref_loss, ref_grad = reference(model, X[4:5], y[4:5], w)
    assert rel_err(loss, ref_loss) <= RTOL
    assert rel_err(grad, ref_grad) <= RTOL


@pytest.mark.parametrize("model", MODELS)
def test_all_zero_sparse_rows(model):
    X, y, w = make("csr", n=20, d=8)
    X = X.tolil()
    X[3:9, :] = 0.0
    X = X.tocsr()
    X.eliminate_zeros()
    assert np.all(np.diff(X.indptr)[3:9] == 0)
    grad = np.zeros(8)
    loss = loss_grad(model, X, y, w, 3, 9, grad)
    # margin 0 on every row: logistic loses log 2 per row, linear 0.5 y^2
    assert loss == pytest.approx(6 * (np.log(2.0) if model == "logistic" else 0.5))
    expected = reference(model, X[3:9], y[3:9], w)[1]
    assert np.allclose(grad, expected, rtol=0, atol=1e-15)
    total = np.zeros(8)
    assert rel_err(loss_grad(model, X, y, w, 0, 20, total), reference(model, X, y, w)[0]) <= RTOL


@pytest.mark.parametrize("scale", [1e3, -1e3, 1e5])
def test_extreme_margins(scale):
    X, y, w = make("dense64", n=50, d=4)
    w = w * scale
    grad = np.zeros(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = loss_grad("logistic", X, y, w, 0, 50, grad)
        ref_loss, ref_grad = reference("logistic", X, y, w)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert rel_err(loss, ref_loss) <= RTOL
    assert rel_err(grad, ref_grad) <= RTOL


def test_logistic_tiny_losses_keep_precision():
    """Huge positive margins: loss ~ exp(-z), which a naive log(1 + exp(-z)) rounds to 0."""
    X = np.array([[40.0], [700.0]])
    grad = np.zeros(1)
    loss = loss_grad("logistic", X, np.ones(2), np.ones(1), 0, 2, grad)
    assert loss == pytest.approx(np.exp(-40.0) + np.exp(-700.0), rel=1e-12)
    assert grad[0] == pytest.approx(-40.0 * np.exp(-40.0) - 700.0 * np.exp(-700.0), rel=1e-12)


def test_equal_but_not_identical_dtypes_accepted():
    """Arrays from pickle (MPI messages) carry dtype objects equal to, not the same as, float64."""
    X, y, w = make("dense64", n=10, d=3)
    X, y, w = pickle.loads(pickle.dumps((X, y, w)))
    grad = pickle.loads(pickle.dumps(np.zeros(3)))
    loss = loss_grad("linear", X, y, w, 0, 10, grad)
    assert rel_err(loss, reference("linear", X, y, w)[0]) <= RTOL


def test_big_endian_csr_data_rejected():
    """Non-native byte order must raise, not be read as native (that gave an inf loss)."""
    X, y, w = make("csr")
    X.data = X.data.astype(">f8")
    with pytest.raises(UsageError, match="CSR X"):
        loss_grad("logistic", X, y, w, 0, X.shape[0], np.zeros(X.shape[1]))


@pytest.mark.parametrize("layout", ("dense64", "csr"))
def test_read_only_inputs_share_the_compiled_function(layout):
    """Memory-mapped (read-only) data must not make Numba compile a second version."""
    X, y, w = make(layout)
    for a in (X.data, X.indices, X.indptr) if layout == "csr" else (X,):
        a.flags.writeable = False
    y.flags.writeable = False
    w.flags.writeable = False
    warmup()
    dispatchers = {d for d, _ in SPECIALISATIONS.values()}
    before = {d: len(d.signatures) for d in dispatchers}
    grad = np.zeros(X.shape[1])
    loss = loss_grad("logistic", X, y, w, 0, X.shape[0], grad)
    assert {d: len(d.signatures) for d in dispatchers} == before
    ref_loss, ref_grad = reference("logistic", X, y, w)
    assert rel_err(loss, ref_loss) <= RTOL and rel_err(grad, ref_grad) <= RTOL
    grad.flags.writeable = False
    with pytest.raises(UsageError, match="grad"):
        loss_grad("logistic", X, y, w, 0, X.shape[0], grad)


def test_bad_inputs_raise_usage_error():
    X, y, w = make("dense64", n=10, d=3)
    g = np.zeros(3)
    bad = [
        (("svm", X, y, w, 0, 10, g), "svm"),
        (("linear", X, y, w, 0, 11, g), r"\[0, 11\)"),
        (("linear", X, y, w, 3, 2, g), r"\[3, 2\)"),
        (("linear", X, y, w, 0, 10, np.zeros(4)), "grad"),
        (("linear", X, y, w[:2], 0, 10, g), "w"),
        (("linear", X, y.astype(np.float32), w, 0, 10, g), "y"),
        (("linear", np.asfortranarray(X), y, w, 0, 10, g), "C-contiguous"),
        (("linear", X.astype(np.int64), y, w, 0, 10, g), "int64"),
        (("linear", sp.csc_matrix(X), y, w, 0, 10, g), "csc"),
        (("linear", X, y, w, 0.5, 10, g), "0.5"),
        (("linear", X, y, w[::2].copy()[:0], 0, 10, g), "w"),
        (("linear", X, y, np.zeros(6)[::2], 0, 10, g), "w"),
        (("linear", X, y, w, 0, 10, g.astype(">f8")), "grad"),
    ]
    for args, match in bad:
        with pytest.raises(UsageError, match=match):
            loss_grad(*args)


def test_vector_logistic_matches_numpy():
    """The four-lane logistic loss and slope (their own exp and log1p) against NumPy and
    SciPy, to a few ulp, over margins from -800 to 800, special margins and every count of
    last rows (padded lanes): NaN margins give NaN losses, huge ones 0 or |z|, and a value
    below the normal range (|z| > 708) is 0."""
    from numba import njit

    from mpigc.kernels._loops import LOGISTIC, LOSS_BLOCK, block_losses, full_block_losses

    @njit
    def losses(t, y, n, loss, slope):
        full = n - n % LOSS_BLOCK
        for start in range(0, full, LOSS_BLOCK):
            full_block_losses(LOGISTIC, t[start:], y, start, loss[start:], slope[start:])
        block_losses(LOGISTIC, t[full:], y, full, n - full, loss[full:], slope[full:])

    rng = np.random.default_rng(1)
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, 708.0,
               -708.0, 709.0, -709.0, 745.0, -745.0, 1e-9, -1e-9, 36.0, -36.0]
    t = np.concatenate([special, np.linspace(-800, 800, 160_001), rng.standard_normal(40_000)])
    y = np.where(rng.random(t.size) < 0.5, -1.0, 1.0)
    z = y * t
    with np.errstate(invalid="ignore"):
        ref_loss, ref_slope = np.logaddexp(0.0, -z), -y * expit(-z)
    for n in (t.size, t.size - 1, t.size - 2, t.size - 3, 5, 3):
        loss, slope = np.full(n, -7.0), np.full(n, -7.0)
        losses(t, y, n, loss, slope)
        assert np.array_equal(np.isnan(loss), np.isnan(ref_loss[:n]))
        assert not np.isnan(slope).any()
        for got, ref in ((loss, ref_loss[:n]), (slope, ref_slope[:n])):
            ok = ~np.isnan(ref)
            got, ref = got[ok], ref[ok]
            differ = got != ref  # infinities and zeros compare equal
            big = differ & (np.abs(ref) > 3.4e-308)
            assert np.all(np.abs(got[big] - ref[big]) <= 1e-15 * np.abs(ref[big])), n
            # beyond |z| = 708 exp(-|z|) is below exp(-708) = 3.3e-308, counted as 0
            tiny = differ & ~big
            assert np.all(np.abs(got[tiny] - ref[tiny]) <= 3.4e-308), n


@pytest.mark.parametrize("layout", ("dense64", "dense32", "csr"))
@pytest.mark.parametrize("model", MODELS)
def test_long_ranges_many_blocks(model, layout):
    """Ranges far longer than a block and starting inside one, with wide rows: the full-block
    path, the ragged tail and the prefetches past the end of the range (the two models
    block their rows differently)."""
    X, y, w = make(layout, n=1000, d=300, density=0.05, seed=3)
    for start, stop in ((0, 1000), (5, 998), (17, 50)):
        grad = np.zeros(300)
        loss = loss_grad(model, X, y, w, start, stop, grad)
        ref_loss, ref_grad = reference(model, X[start:stop], y[start:stop], w)
        assert rel_err(loss, ref_loss) <= RTOL
        assert rel_err(grad, ref_grad) <= RTOL


@pytest.mark.parametrize("layout", ("dense64", "dense32"))
@pytest.mark.parametrize("model", MODELS)
def test_widths_around_the_vector_steps(model, layout):
    """Every width up to 40 and around the steps of the vector loops (8 columns of the
    four-row dots, 16 of the column pass, 32 / 64 of a prefetch slice), with the
    intercept, over row ranges that leave partial groups of four rows and of a block."""
    widths = list(range(1, 41)) + [63, 64, 65, 127, 128, 129, 135, 255, 256, 257]
    for d in widths:
        X, y, w = make(layout, n=300, d=d, seed=d)
        w1 = np.append(w, 0.3)
        for start, stop in ((0, 300), (3, 290), (1, 18)):
            grad = np.zeros(d + 1)
            loss = loss_grad(model, X, y, w1, start, stop, grad, fit_intercept=True)
            Xs = np.hstack([X[start:stop].astype(np.float64), np.ones((stop - start, 1))])
            ref_loss, ref_grad = reference(model, Xs, y[start:stop], w1)
            assert rel_err(loss, ref_loss) <= RTOL, (d, start, stop)
            assert rel_err(grad, ref_grad) <= RTOL, (d, start, stop)
