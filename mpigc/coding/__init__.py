"""Gradient coding that uses the work of partial stragglers: the maths, without MPI.

A 30-second tour (N = 6 workers, cyclic load 3, each worker sends d/2 numbers)::

    import numpy as np
    from mpigc.coding import cyclic, q_max, GradientCode, CoverageTracker

    a = cyclic(6, 3)                            # worker i processes i, i+1, i+2 (mod 6)
    code = GradientCode(a, ell=2, seed=0)       # beta: 2 x 6 Gaussian
    print(q_max(a, 2))                          # 16: any 16 processed chunks suffice

    d = 10
    grads = {j: np.random.default_rng(j).standard_normal(d) for j in range(6)}
    state = np.array([3, 2, 3, 1, 3, 2])        # chunks finished, along each ordering
    assert code.decodable(state)
    sent = {i: code.encode(i, state, {j: grads[j] for j in a.chunks(i)})
            for i in range(6) if state[i] > 0}  # each of length ceil(d / 2)
    g = code.decode(state, sent, d)
    assert np.allclose(g, sum(grads.values()))

    tracker = CoverageTracker(a, ell=2)         # the PS side: O(1) per progress report
    for i, count in enumerate(state):
        tracker.report(i, int(count))
    assert tracker.decodable

Public names: :class:`Assignment` (``from_matrix``, ``from_orderings``, ``with_orderings``), :func:`cyclic`,
:func:`frc`, :func:`regular`, :func:`load_assignment`, :func:`load_orderings`,
:func:`optimal_ordering`, :func:`random_ordering`, :func:`q_max`, :class:`GradientCode`,
:func:`make_beta`, :class:`FixedCode` (Tandon et al., ell = 1), :class:`CoverageTracker`.
Bad arguments raise :class:`mpigc.errors.UsageError`, a ``ValueError``.

Storage is sparse (O(nnz)): ``Assignment.matrix`` / ``positions`` are dense O(m N) views
built on first use; at large N use ``holders``/``holder_positions``, ``coverage``,
``GradientCode.encode_all`` and ``CoverageTracker.report_all``.
"""

from mpigc.coding.assignment import (
    Assignment,
    cyclic,
    frc,
    load_assignment,
    load_orderings,
    regular,
)
from mpigc.coding.code import GradientCode, make_beta
from mpigc.coding.fixed import FixedCode
from mpigc.coding.ordering import optimal_ordering, q_max, random_ordering
from mpigc.coding.tracker import CoverageTracker

__all__ = [
    "Assignment", "cyclic", "frc", "regular", "load_assignment", "load_orderings",
    "optimal_ordering", "random_ordering", "q_max",
    "GradientCode", "make_beta", "FixedCode", "CoverageTracker",
]
