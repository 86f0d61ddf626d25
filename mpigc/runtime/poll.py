"""Polling without burning a core: a sleep that grows while nothing happens (no MPI here).

Every poll loop of the runtime (the PS waiting for reports and vectors, a worker waiting
for the state) sleeps between tests. When ranks outnumber cores, a spinning rank would
take the core from a rank that computes.
"""

import time


class Backoff:
    """Sleep between polls that grows while nothing happens.

    Starts at ``first`` seconds and doubles up to ``longest``; :meth:`reset` after every
    event. A poll loop therefore reacts within ``longest`` seconds without burning a core
    (which matters when ranks outnumber cores).
    """

    def __init__(self, first=20e-6, longest=5e-4):
        self.first, self.longest = first, longest
        self.delay = first

    def reset(self):
        """Back to the first delay (something happened)."""
        self.delay = self.first

    def wait(self, at_most=None):
        """Sleep the current delay (never longer than ``at_most`` seconds), then grow it."""
        delay = self.delay if at_most is None else max(0.0, min(self.delay, at_most))
        time.sleep(delay)
        self.delay = min(2.0 * self.delay, self.longest)
