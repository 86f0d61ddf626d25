"""Straggler models (SPEC section 7): determinism, distributions, joins, traces, errors."""

import math
import time

import numpy as np
import pytest
import scipy.stats

from mpigc.errors import UsageError
from mpigc.stragglers import parse_stragglers

N = 500


def samples(spec, iterations=20, n=N, seed=3):
    m = parse_stragglers(spec, n, seed)
    return np.concatenate([m.factors(t) for t in range(iterations)])


@pytest.mark.parametrize("spec", ["exp:mean=2", "shifted-exp:shift=1,rate=1", "pareto:alpha=3",
                                  "bimodal:p=0.3,slowdown=5", "fail:p=0.2",
                                  "persistent:frac=0.1,slowdown=4+exp:mean=1"])
def test_factors_are_a_pure_function_of_seed_iteration_worker(spec):
    a = parse_stragglers(spec, 50, 7)
    b = parse_stragglers(spec, 50, 7)
    later_first = [b.factors(t) for t in (9, 2, 5)]
    np.testing.assert_array_equal(later_first[1], a.factors(2))
    np.testing.assert_array_equal(later_first[0], a.factors(9))
    assert a.factor(5, 17) == later_first[2][17]
    assert not np.array_equal(a.factors(3), a.factors(4))
    assert not np.array_equal(a.factors(3), parse_stragglers(spec, 50, 8).factors(3))
    f = a.factors(1)
    f[:] = -1  # the returned vector is the caller's
    assert np.all(a.factors(1) != -1)


@pytest.mark.parametrize("spec, dist", [
    ("exp:mean=2", scipy.stats.expon(loc=1, scale=2)),
    ("shifted-exp:shift=1,rate=1", scipy.stats.expon(loc=1, scale=1)),
    ("shifted-exp:shift=0.5,rate=4", scipy.stats.expon(loc=0.5, scale=0.25)),
    ("pareto:alpha=2.5", scipy.stats.pareto(b=2.5)),
])
def test_continuous_models_follow_their_distribution(spec, dist):
    x = samples(spec)
    assert scipy.stats.kstest(x, dist.cdf).pvalue > 1e-3
    assert abs(x.mean() - dist.mean()) < 5 * dist.std() / math.sqrt(len(x))


def test_bimodal_and_fail_frequencies():
    x = samples("bimodal:p=0.3,slowdown=5")
    assert set(np.unique(x)) == {1.0, 5.0}
    assert abs(np.mean(x == 5) - 0.3) < 4 * math.sqrt(0.3 * 0.7 / len(x))
    y = samples("fail:p=0.1")
    assert set(np.unique(y)) == {1.0, np.inf}
    assert abs(np.mean(np.isinf(y)) - 0.1) < 4 * math.sqrt(0.1 * 0.9 / len(y))


def test_persistent_is_the_same_ceil_subset_every_iteration():
    m = parse_stragglers("persistent:frac=0.1,slowdown=8", 33, 1)
    f0 = m.factors(0)
    assert np.sum(f0 == 8) == math.ceil(0.1 * 33) and np.sum(f0 == 1) == 33 - 4
    for t in range(1, 5):
        np.testing.assert_array_equal(m.factors(t), f0)
    assert np.sum(parse_stragglers("persistent:frac=0.1,slowdown=8", 30, 1).factors(0) == 8) == 3


def test_joins_multiply_and_failure_wins():
    f = parse_stragglers("persistent:frac=1,slowdown=2+bimodal:p=1,slowdown=3", 10, 0).factors(4)
    np.testing.assert_array_equal(f, np.full(10, 6.0))
    g = parse_stragglers("exp:mean=1+fail:p=1", 10, 0).factors(0)
    assert np.all(np.isinf(g))
    assert np.all(parse_stragglers("none", 4, 0).factors(3) == 1.0)
    # a component's draws depend on its position in the join, not on the others
    a = parse_stragglers("exp:mean=1+pareto:alpha=2", 20, 5).factors(2)
    b = parse_stragglers("exp:mean=1+none", 20, 5).factors(2)
    c = parse_stragglers("none+pareto:alpha=2", 20, 5).factors(2)
    np.testing.assert_allclose(a, b * c)


def test_trace_rows_repeat_and_are_validated(tmp_path):
    rows = np.array([[1.0, 2.0, 3.0], [4.0, np.inf, 0.5]])
    txt = tmp_path / "trace.txt"
    txt.write_text("# factors\n1, 2, 3\n4 inf 0.5\n")
    m = parse_stragglers(f"trace:{txt}", 3, 0)
    for t in range(5):
        np.testing.assert_array_equal(m.factors(t), rows[t % 2])
    npy = tmp_path / "trace.npy"
    np.save(npy, rows)
    np.testing.assert_array_equal(parse_stragglers(f"trace:{npy}+bimodal:p=1,slowdown=2", 3, 0)
                                  .factors(1), 2 * rows[1])
    with pytest.raises(UsageError, match=r"trace.npy.*shape \(2, 3\).*4 factors"):
        parse_stragglers(f"trace:{npy}", 4, 0)
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 x\n")
    with pytest.raises(UsageError, match="bad.txt"):
        parse_stragglers(f"trace:{bad}", 3, 0)
    neg = tmp_path / "neg.txt"
    neg.write_text("1 2 3\n1 -2 3\n")
    with pytest.raises(UsageError, match="row 2, column 2"):
        parse_stragglers(f"trace:{neg}", 3, 0)


@pytest.mark.parametrize("spec, message", [
    ("", "empty"),
    ("slow:p=1", "unknown straggler model 'slow'"),
    ("exp", "needs mean="),
    ("exp:mean=1,mean=2", "given twice"),
    ("exp:mean=1,scale=2", "no parameter 'scale'"),
    ("exp:mean=fast", "'fast' is not a number"),
    ("exp:mean", "KEY=VALUE"),
    ("exp:mean=0", "mean must be > 0"),
    ("shifted-exp:shift=1,rate=-1", "rate must be > 0"),
    ("shifted-exp:shift=-1,rate=1", "shift must be >= 0"),
    ("pareto:alpha=nan", "finite"),
    ("bimodal:p=1.5,slowdown=3", "p must be a probability"),
    ("bimodal:p=0.5,slowdown=0.5", "slowdown must be >= 1"),
    ("persistent:frac=-0.1,slowdown=2", "frac must be a probability"),
    ("fail:p=2", "p must be a probability"),
    ("none:p=1", "takes no parameters"),
    ("exp:mean=1++fail:p=0.1", "empty model"),
    ("trace:", "needs a file"),
    ("trace:/nonexistent/file.txt", "does not exist"),
])
def test_malformed_specs_name_the_bad_part(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_stragglers(spec, 4, 0)


def test_bad_seed_worker_and_iteration():
    with pytest.raises(UsageError, match="seed"):
        parse_stragglers("none", 4, -1)
    m = parse_stragglers("exp:mean=1", 4, 0)
    with pytest.raises(UsageError, match="iteration"):
        m.factors(-1)
    with pytest.raises(UsageError, match="worker"):
        m.factor(0, 4)


def test_large_draws_are_cheap():
    m = parse_stragglers("shifted-exp:shift=1,rate=1+bimodal:p=0.1,slowdown=4", 10_000, 0)
    start = time.perf_counter()
    for t in range(100):
        m.factors(t)
    assert time.perf_counter() - start < 2.0
