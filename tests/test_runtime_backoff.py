"""The poll loops' backoff."""

import time


def test_backoff_grows_to_its_ceiling_and_resets():
    from mpigc.runtime.poll import Backoff

    b = Backoff(first=1e-6, longest=8e-6)
    delays = []
    for _ in range(6):
        delays.append(b.delay)
        b.wait()
    assert delays == [1e-6, 2e-6, 4e-6, 8e-6, 8e-6, 8e-6]
    b.reset()
    assert b.delay == 1e-6
    t0 = time.perf_counter()
    Backoff(first=0.5, longest=0.5).wait(at_most=0.0)
    assert time.perf_counter() - t0 < 0.1
