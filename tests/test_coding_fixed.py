"""FixedCode (Tandon et al. 2017): exact from any N - s finished workers (fractional repetition:
one per group), least squares below."""

import itertools

import numpy as np
import pytest
import scipy.linalg

from mpigc.coding import Assignment, FixedCode, cyclic, frc, regular
from mpigc.errors import UsageError


def transmissions(code, grads, workers):
    a = code.assignment
    return {i: code.encode(i, {j: grads[j] for j in a.chunks(i)}) for i in workers}


@pytest.mark.parametrize("a", [cyclic(5, 2), cyclic(6, 3), cyclic(7, 4), cyclic(4, 1), frc(6, 3),
                               frc(8, 2), regular(7, 3, 1)], ids=repr)
def test_any_n_minus_s_finished_workers_decode_exactly(a):
    code = FixedCode(a, seed=2)
    s = int(a.replication.min()) - 1
    assert code.stragglers == s
    assert not np.any(code.B[~a.matrix.T])  # support within the assignment
    rng = np.random.default_rng(0)
    d = 11
    grads = {j: rng.standard_normal(d) for j in range(a.n_chunks)}
    truth = sum(grads.values())
    sent = transmissions(code, grads, range(a.n_workers))
    for stragglers in itertools.combinations(range(a.n_workers), s):
        finished = [i for i in range(a.n_workers) if i not in stragglers]
        g = code.decode(finished, sent, d)
        assert np.linalg.norm(g - truth) <= 1e-10 * np.linalg.norm(truth)


def test_cyclic_code_has_full_rows():
    code = FixedCode(cyclic(8, 3), seed=0)
    assert np.all(code.B[cyclic(8, 3).matrix.T] != 0)


def test_too_few_finished_is_least_squares():
    a = cyclic(6, 3)
    code = FixedCode(a, seed=1)
    rng = np.random.default_rng(1)
    grads = {j: rng.standard_normal(5) for j in range(6)}
    finished = [0, 2]
    sent = transmissions(code, grads, finished)
    w, *_ = scipy.linalg.lstsq(code.B[finished].T, np.ones(6))
    expected = sum(w[k] * code.B[i, j] * grads[j] for k, i in enumerate(finished) for j in a.chunks(i))
    got = code.decode(finished, sent, 5)
    assert np.allclose(got, expected, atol=1e-12)
    assert not np.allclose(got, sum(grads.values()), atol=1e-3)
    assert np.array_equal(code.decode([], {}, 5), np.zeros(5))


def test_fractional_repetition_adds_one_finished_worker_per_group():
    a = frc(8, 2)
    code = FixedCode(a, seed=0)
    assert np.array_equal(code.B, a.matrix.T) and code.groups.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    rng = np.random.default_rng(3)
    grads = {j: rng.standard_normal(4) for j in range(8)}
    sent = transmissions(code, grads, range(8))
    assert np.allclose(sent[5], grads[4] + grads[5])  # the plain sum of its group's chunks
    # one worker of every group: exact, though 4 finished workers are fewer than N - s = 7
    g = code.decode([1, 2, 5, 6], sent, 4)
    assert np.allclose(g, sum(grads.values()), rtol=1e-13)
    # it is the lowest finished worker's own vector that is added, not a least-squares mix
    skewed = {**sent, 3: sent[3] + 1.0}
    assert np.array_equal(code.decode([2, 3], skewed, 4), sent[2])
    # group 1 (chunks 2, 3) unfinished: it is missing, as in the least-squares fit
    finished = [0, 1, 4, 7]
    w = scipy.linalg.lstsq(code.B[finished].T, np.ones(8))[0]
    expected = w @ np.stack([sent[i] for i in finished])
    assert np.allclose(code.decode(finished, sent, 4), expected, atol=1e-12)
    assert np.allclose(expected, sum(grads.values()) - grads[2] - grads[3])


def test_seeded():
    assert np.array_equal(FixedCode(cyclic(6, 3), seed=4).B, FixedCode(cyclic(6, 3), seed=4).B)


def test_assignment_without_a_fixed_code():
    A = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])  # m = 4 chunks > N = 3 workers
    with pytest.raises(UsageError, match=r"no fixed gradient code .* s = 1 stragglers"):
        FixedCode(Assignment.from_matrix(A))


@pytest.mark.parametrize("call,message", [
    (lambda c: c.encode(6, {}), r"worker 6 is not in 0..5"),
    (lambda c: c.encode(0, {0: np.ones(3), 1: np.ones(3)}), r"chunk_grads lacks chunk 2 of worker 0"),
    (lambda c: c.encode(0, {0: np.ones(3), 1: np.ones(3), 2: np.ones(4)}), r"gradient of chunk 2 has shape \(4,\)"),
    (lambda c: c.decode([0, 1], {0: np.ones(3)}, 3), r"missing transmission of finished worker 1"),
    (lambda c: c.decode([0], {0: np.ones(2)}, 3), r"transmission of worker 0 has shape \(2,\)"),
    (lambda c: c.decode([9], {}, 3), r"finished worker 9 is not in 0..5"),
    (lambda c: FixedCode("cyclic"), r"must be an mpigc.coding.Assignment"),
])
def test_bad_arguments(call, message):
    with pytest.raises(UsageError, match=message):
        call(FixedCode(cyclic(6, 3)))


def test_worker_without_chunks_sends_nothing():
    code = FixedCode(Assignment.from_matrix([[1, 0], [1, 0]]))
    with pytest.raises(UsageError, match=r"worker 1 holds no chunk"):
        code.encode(1, {})
