"""GradientCode: exact and approximate decoding, coefficients, validation."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from mpigc.coding import (
    GradientCode,
    cyclic,
    frc,
    make_beta,
    optimal_ordering,
    random_ordering,
    regular,
)
from mpigc.coding.code import COEFFICIENT_CACHE_SIZE
from strategies import assignments, direct_coverage, make_decodable, states

WORST = {"exact": 0.0}


@pytest.fixture(scope="module", autouse=True)
def report_worst_error():
    yield
    print(f"\nworst relative exact-decode error over the property tests: {WORST['exact']:.3e}")


def roundtrip(code, state, grads, d):
    a = code.assignment
    sent = {i: code.encode(i, state, {j: grads[j] for j in a.chunks(i)})
            for i in range(a.n_workers) if state[i] > 0}
    return code.decode(state, sent, d)


def rel_err(x, ref):
    return np.linalg.norm(x - ref) / np.linalg.norm(ref)


def check_exact(code, state, grads, d):
    assert code.decodable(state)
    err = rel_err(roundtrip(code, state, grads, d), sum(grads.values()))
    WORST["exact"] = max(WORST["exact"], err)
    assert err <= 1e-10


@settings(max_examples=300, deadline=None)
@given(assignments(max_workers=7, max_chunks=7), st.data())
def test_exact_decode_random_assignments(a, data):
    ell = data.draw(st.integers(1, int(a.replication.min())))
    d = data.draw(st.integers(1, 13))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    state = make_decodable(a, states(data.draw, a), ell, rng)
    grads = {j: rng.standard_normal(d) for j in range(a.n_chunks)}
    check_exact(GradientCode(a, ell, seed=seed), state, grads, d)


@pytest.mark.parametrize("seed", range(40))
def test_exact_decode_larger_codes(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 31))
    load = int(rng.integers(1, min(n, 10) + 1))
    make = [cyclic, frc, regular][seed % 3]
    if make is frc:
        load = [k for k in range(1, n + 1) if n % k == 0 and k <= 10][-1]
    a = make(n, load, seed) if make is regular else make(n, load)
    a = [a, random_ordering(a, seed), optimal_ordering(a)][seed % 3]
    ell = int(rng.integers(1, load + 1))
    d = int(rng.integers(1, 200))
    start = np.array([rng.integers(0, load + 1) for _ in range(n)])
    state = make_decodable(a, start, ell, rng)
    grads = {j: rng.standard_normal(d) for j in range(a.n_chunks)}
    check_exact(GradientCode(a, ell, seed=seed), state, grads, d)


def projection_reference(code, state, grads, d):
    """sum_j (P_j kron I) g_j with P_j the orthogonal projector onto range(beta[:, S_j])."""
    a, ell = code.assignment, code.ell
    b = -(-d // ell)
    out = np.zeros(ell * b)
    for j in range(a.n_chunks):
        S = [i for i in range(a.n_workers) if j in a.orderings[i][: state[i]]]
        if not S:
            continue
        U = scipy.linalg.orth(code.beta[:, S])
        g = np.zeros(ell * b)
        g[:d] = grads[j]
        out += ((U @ U.T) @ g.reshape(ell, b)).reshape(-1)
    return out[:d]


@settings(max_examples=300, deadline=None)
@given(assignments(max_workers=7, max_chunks=7), st.data())
def test_approximate_decode_is_blockwise_projection(a, data):
    ell = data.draw(st.integers(1, int(a.replication.min())))
    d = data.draw(st.integers(1, 13))
    state = states(data.draw, a)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    grads = {j: rng.standard_normal(d) for j in range(a.n_chunks)}
    code = GradientCode(a, ell, seed=3)
    ref = projection_reference(code, state, grads, d)
    got = roundtrip(code, state, grads, d) if state.any() else code.decode(state, {}, d)
    assert np.allclose(got, ref, rtol=1e-9, atol=1e-9 * (1 + np.linalg.norm(ref)))
    cov = direct_coverage(a, state)
    assert code.decodable(state) == bool((cov >= ell).all())
    assert code.recovered_fraction(state) == pytest.approx(np.mean(cov >= ell))


def test_decode_accepts_stacked_transmissions():
    a = cyclic(6, 3)
    code = GradientCode(a, 2, seed=5)
    state = np.array([3, 0, 2, 3, 1, 3])
    rng = np.random.default_rng(2)
    grads = {j: rng.standard_normal(9) for j in range(6)}
    sent = {i: code.encode(i, state, grads) for i in range(6) if state[i]}
    rows = np.stack([sent[i] for i in sorted(sent)])
    assert np.array_equal(code.decode(state, rows, 9), code.decode(state, sent, 9))
    with pytest.raises(ValueError, match=r"transmissions array has shape \(4, 5\), expected \(5, 5\)"):
        code.decode(state, rows[:4], 9)


def test_unprocessed_chunks_are_missing():
    a = cyclic(6, 3)
    code = GradientCode(a, 2, seed=1)
    state = np.array([3, 3, 3, 3, 0, 0])  # chunk 5 is on workers 3, 4, 5 at positions 3, 2, 1
    assert direct_coverage(a, state)[5] == 1
    state[3] = 2
    assert direct_coverage(a, state)[5] == 0
    rng = np.random.default_rng(0)
    grads = {j: rng.standard_normal(9) for j in range(6)}
    before = roundtrip(code, state, grads, 9)
    grads[5] = grads[5] + 1e6 * rng.standard_normal(9)
    assert np.array_equal(roundtrip(code, state, grads, 9), before)
    assert code.recovered_fraction(state) < 1 and not code.decodable(state)


def test_ell_one_is_plain_averaging():
    a = regular(7, 3, 2)
    code = GradientCode(a, 1, seed=9, beta="gaussian")
    assert np.array_equal(code.beta, np.ones((1, 7)))
    state = np.array([3, 1, 0, 2, 3, 1, 2])
    for i in range(7):
        for j, x in code.coefficients(i, state).items():
            assert x == pytest.approx([1 / direct_coverage(a, state)[j]])


def test_coefficients_are_min_norm_inverse_shared_by_holders():
    a = cyclic(8, 4)
    code = GradientCode(a, 3, seed=4)
    state = np.array([4, 2, 3, 4, 1, 4, 4, 3])
    coefs = {i: code.coefficients(i, state) for i in range(8)}
    for j in range(8):
        S = [i for i in range(8) if j in coefs[i]]
        X = np.array([coefs[i][j] for i in S])
        assert np.allclose(X, np.linalg.pinv(code.beta[:, S]), atol=1e-12)
        if len(S) >= 3:
            assert np.allclose(code.beta[:, S] @ X, np.eye(3), atol=1e-12)
    assert len(coefs[4]) == 1


def test_beta_is_seeded_and_shaped():
    assert np.array_equal(GradientCode(cyclic(5, 3), 2, seed=1).beta, GradientCode(cyclic(5, 3), 2, seed=1).beta)
    assert not np.array_equal(make_beta(5, 2, seed=1), make_beta(5, 2, seed=2))
    v = make_beta(5, 3, "vandermonde")
    assert np.allclose(v, [np.linspace(-1, 1, 5) ** k for k in range(3)])
    explicit = np.arange(10.0).reshape(2, 5) + np.eye(2, 5)
    assert np.array_equal(GradientCode(cyclic(5, 3), 2, beta=explicit).beta, explicit)


def test_vandermonde_is_the_unstable_comparison():
    a = cyclic(30, 25)
    rng = np.random.default_rng(0)
    grads = {j: rng.standard_normal(500) for j in range(30)}
    truth = sum(grads.values())
    err = {kind: rel_err(roundtrip(GradientCode(a, 20, seed=1, beta=kind), a.loads, grads, 500), truth)
           for kind in ("gaussian", "vandermonde")}
    assert err["gaussian"] < 1e-12
    assert err["vandermonde"] > 1000 * err["gaussian"]


def test_encode_length_and_padding():
    a = frc(6, 3)
    code = GradientCode(a, 3, seed=0)
    rng = np.random.default_rng(1)
    grads = {j: rng.standard_normal(7) for j in range(6)}
    y = code.encode(0, a.loads, grads)  # extra chunks of other workers are ignored
    assert y.shape == (3,) and code.block_len(7) == 3
    padded = {j: np.concatenate([g, [0.0, 0.0]]) for j, g in grads.items()}
    assert np.allclose(GradientCode(a, 3, seed=0).encode(0, a.loads, padded), y)


def test_coefficient_cache_is_bounded_and_hit():
    a = cyclic(6, 3)
    code = GradientCode(a, 2)
    state = np.array([3, 2, 3, 1, 3, 2])
    code.coefficients(0, state)
    misses = code._pinv.cache_info().misses
    code.coefficients(0, state)
    info = code._pinv.cache_info()
    assert info.misses == misses and info.hits >= 3 and info.maxsize == COEFFICIENT_CACHE_SIZE


@pytest.mark.parametrize("call,message", [
    (lambda c: GradientCode(c.assignment, 4), r"ell = 4 must be in 1..3"),
    (lambda c: GradientCode(c.assignment, 2, beta="chebyshev"), r"beta must be 'gaussian', 'vandermonde'"),
    (lambda c: GradientCode(c.assignment, 2, beta=np.ones((3, 6))), r"beta must have shape \(2, 6\)"),
    (lambda c: GradientCode(np.ones((6, 6)), 2), r"must be an mpigc.coding.Assignment"),
    (lambda c: c.decodable([1, 1, 1, 1, 1, 4]), r"state\[5\] = 4 is outside 0..3"),
    (lambda c: c.encode(7, [1] * 6, {}), r"worker 7 is not in 0..5"),
    (lambda c: c.encode(0, [0, 1, 1, 1, 1, 1], {}), r"worker 0 has state 0: it sends nothing"),
    (lambda c: c.encode(0, [2, 1, 1, 1, 1, 1], {0: np.ones(4)}), r"chunk_grads lacks chunk 1"),
    (lambda c: c.encode(0, [2, 1, 1, 1, 1, 1], {0: np.ones(4), 1: np.ones(5)}),
     r"gradient of chunk 1 has shape \(5,\)"),
    (lambda c: c.decode([1, 0, 0, 0, 0, 0], {}, 4), r"missing transmission of worker 0"),
    (lambda c: c.decode([1, 0, 0, 0, 0, 0], {0: np.ones(2), 3: np.ones(2)}, 4), r"transmission from worker 3"),
    (lambda c: c.decode([1, 0, 0, 0, 0, 0], {0: np.ones(3)}, 4), r"transmission of worker 0 has shape \(3,\)"),
    (lambda c: c.decode([1, 0, 0, 0, 0, 0], {0: np.ones(2)}, 0), r"gradient length d must be a positive"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(GradientCode(cyclic(6, 3), 2))


def test_package_docstring_example_runs():
    import textwrap

    import mpigc.coding

    example = mpigc.coding.__doc__.split("::\n")[1].split("\nPublic names")[0]
    exec(textwrap.dedent(example), {})
