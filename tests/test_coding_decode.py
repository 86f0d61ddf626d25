"""StreamingDecoder: the PS's decode as vectors arrive equals Protocol.decode, in any order."""

import numpy as np
import pytest

from mpigc.coding.decode import StreamingDecoder
from mpigc.errors import UsageError
from mpigc.schemes import build_protocol

CASES = [  # scheme, assignment, workers, load, ell, d, group
    ("psgc", "cyclic", 20, 4, 2, 101, 8),
    ("psgc", "cyclic", 37, 3, 3, 1000, 4),
    ("psgc", "cyclic", 3, 3, 1, 5, 8),
    ("gc", "cyclic", 12, 3, 1, 50, 3),        # Tandon's fixed code: least-squares weights
    ("gc", "frc", 12, 3, 1, 50, 3),           # one finished worker per group
    ("ignore-stragglers", "cyclic", 10, 1, 1, 7, 2),  # rescaled by the recovered fraction
]


def _state(p, rng):
    loads = p.assignment.loads
    if p.scheme.report == "done":  # only finished workers are ever counted
        return np.where(rng.random(p.n_workers) < 0.7, loads, 0)
    return rng.integers(0, loads + 1)


@pytest.mark.parametrize("scheme,assignment,n,load,ell,d,group", CASES)
def test_streaming_decode_is_protocol_decode_in_any_arrival_order(scheme, assignment, n, load,
                                                                  ell, d, group):
    rng = np.random.default_rng(n)
    p = build_protocol(scheme, n, assignment, load=load, ell=ell)
    state = _state(p, rng)
    grads = rng.standard_normal((p.assignment.n_chunks, d))
    sent = p.encode_all(state, grads)
    senders = p.senders(state)
    vectors = [sent[int(i)] for i in senders] if isinstance(sent, dict) else list(sent)
    expected, recovered = p.decode(state, sent, d)
    weights, got_recovered = p.decode_weights(state)
    assert got_recovered == recovered
    b = -(-d // ell)
    dec = StreamingDecoder(n, b, ell, d, extra=3, group=group)
    results = []
    for _ in range(4):
        dec.rows[:] = np.nan  # rows of workers that send nothing must never be read
        dec.start(weights, senders)
        for k in rng.permutation(len(senders)):
            dec.rows[senders[k], :b] = vectors[k]
            assert not dec.done
            dec.add(int(senders[k]))
        results.append(dec.result())
    np.testing.assert_allclose(results[0], expected, rtol=1e-12, atol=1e-12)
    for r in results[1:]:  # a fixed summation tree: bit-identical whatever the order
        assert np.array_equal(r, results[0])


def test_nobody_sent_gives_zeros_and_misuse_is_refused():
    dec = StreamingDecoder(5, 4, 1, 4, group=2)
    dec.start(np.zeros((1, 5)), [])
    assert dec.done and np.array_equal(dec.result(), np.zeros(4))
    dec.start(np.ones((1, 5)), [1, 3])
    with pytest.raises(UsageError, match="worker 0 is not an outstanding sender"):
        dec.add(0)
    dec.add(1)
    with pytest.raises(UsageError, match="worker 1 is not an outstanding sender"):
        dec.add(1)
    with pytest.raises(UsageError, match="before every sender's vector arrived"):
        dec.result()
    with pytest.raises(UsageError, match=r"decode weights have shape \(2, 5\)"):
        dec.start(np.ones((2, 5)), [0])
