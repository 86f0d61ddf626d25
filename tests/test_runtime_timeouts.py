"""The parameter server's adaptive timeouts (no MPI)."""

import math

import numpy as np


def test_iteration_timeout_adapts_to_the_run():
    from mpigc.runtime.ps import ITERATION_TIMEOUT_FACTOR, ITERATION_TIMEOUT_FLOOR, ParameterServer
    from mpigc.schemes import build_protocol

    protocol = build_protocol("uncoded", 4)
    ps = ParameterServer(None, protocol, np.full(4, 10), 3)
    # first iteration, nothing reported: chunks may be long
    assert ps.iteration_timeout() == math.inf
    assert ps.iteration_timeout(first_report=0.001) == ITERATION_TIMEOUT_FLOOR
    assert ps.iteration_timeout(first_report=2.0) == ITERATION_TIMEOUT_FACTOR * 2.0
    for seconds in (0.5, 0.3, 9.0):
        ps.record(seconds)
    assert ps.iteration_timeout() == ITERATION_TIMEOUT_FACTOR * 0.5
    assert ps.iteration_timeout(first_report=0.7) == ITERATION_TIMEOUT_FACTOR * 0.7
    fixed = ParameterServer(None, protocol, np.full(4, 10), 3, iteration_timeout=0.25)
    assert fixed.iteration_timeout(5.0) == 0.25
