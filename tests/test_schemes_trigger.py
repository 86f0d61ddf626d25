"""The PS trigger of each scheme as the runtime and the simulator apply it (Protocol.fired).

gc follows the original code of its assignment: on a fractional repetition it fires once
every group has ell finished workers (Tandon et al.'s replication.py at ell = 1), on any
other assignment once N - s workers have finished (their cyclic code).
"""

import numpy as np
import pytest

from mpigc.schemes import build_protocol


def progress_events(protocol, rng):
    """A random progress pattern: workers advance one chunk at a time in random order."""
    loads = protocol.assignment.loads
    steps = np.repeat(np.arange(len(loads)), loads)
    rng.shuffle(steps)
    counts = np.zeros(len(loads), dtype=np.int64)
    for i in steps:
        counts[i] += 1
        yield int(i), int(counts[i])


@pytest.mark.parametrize("n, load, ell, ordering", [(8, 2, 1, "optimal"), (9, 3, 1, "natural"),
                                                    (12, 4, 2, "optimal"), (6, 6, 1, "natural")])
def test_gc_on_frc_fires_when_every_group_has_ell_finished_workers(n, load, ell, ordering):
    p = build_protocol("gc", n, "frc", load, ell, ordering, seed=n)
    groups = p.assignment.groups
    assert p.trigger == "coverage" and groups is not None
    rng = np.random.default_rng(n)
    d = 5
    grads = rng.standard_normal((n, d))
    fewer_than_n_minus_s = 0
    for _ in range(50):
        tracker = p.new_tracker()
        finished = np.zeros(n, dtype=bool)
        for i, count in progress_events(p, rng):
            if p.reports_at(i, count):
                tracker.report(i, count)
            finished[i] = count == load
            direct = np.bincount(groups[finished], minlength=groups.max() + 1).min() >= ell
            assert p.fired(tracker) == direct
            if direct:
                break
        fewer_than_n_minus_s += finished.sum() < n - p.tolerance
        # decoded at that moment, from the vectors the broadcast state asks for: exact
        state = tracker.state
        assert np.array_equal(state, np.where(finished, load, 0))
        sent = {int(i): p.encode(int(i), state, {j: grads[j] for j in p.assignment.chunks(i)})
                for i in p.senders(state)}
        g, recovered = p.decode(state, sent, d)
        assert recovered == 1.0
        np.testing.assert_allclose(g, grads.sum(axis=0), rtol=1e-10, atol=1e-12)
        # the PS's form of the same decode: weights on the rows as they arrive
        W, _ = p.decode_weights(state)
        Y = np.zeros((n, max(len(v) for v in sent.values())))
        for i, v in sent.items():
            Y[i, :len(v)] = v
        np.testing.assert_allclose((W @ Y).reshape(-1)[:d], grads.sum(axis=0), rtol=1e-10, atol=1e-12)
    if 1 < load < n:  # the old "any N - s finished" rule would have waited longer
        assert fewer_than_n_minus_s > 10


def test_gc_on_frc_uses_the_group_code_and_only_its_tolerance():
    p = build_protocol("gc", 8, "frc", 2)
    assert p.encoder.fixed.groups is not None and p.tolerance == 1
    assert build_protocol("gc", 8, "frc", 2, tolerance=1).trigger == "coverage"  # a replayed run
    with pytest.raises(ValueError, match=r"--straggler-tolerance does not apply to gc on a fractional "
                                         r"repetition \(it decodes once every group has 1 "
                                         r"finished worker\), got 0"):
        build_protocol("gc", 8, "frc", 2, tolerance=0)


@pytest.mark.parametrize("scheme, assignment", [("gc", "cyclic"), ("gc", "regular"),
                                                ("ignore-stragglers", "frc")])
def test_other_assignments_and_schemes_wait_for_n_minus_s_finished(scheme, assignment):
    load = None if scheme == "ignore-stragglers" else 3
    p = build_protocol(scheme, 9, assignment, load, seed=1)
    assert p.trigger == "finished" and p.finished_needed == 9 - p.tolerance
    rng = np.random.default_rng(0)
    for _ in range(20):
        tracker = p.new_tracker()
        n_finished = 0
        for i, count in progress_events(p, rng):
            if p.reports_at(i, count):
                tracker.report(i, count)
            n_finished += count == p.assignment.loads[i]
            assert p.fired(tracker) == (n_finished >= 9 - p.tolerance)
