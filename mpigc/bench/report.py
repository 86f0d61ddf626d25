"""What the benchmarks report alike: medians over rounds, with every round listed, and
targets met or missed.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping


def medians(runs: Mapping[str, Iterable[float]]) -> dict[str, float]:
    """The median of each list of runs, by name."""
    return {name: statistics.median(values) for name, values in runs.items()}


def with_runs(name: str, runs: Iterable[float]) -> dict[str, float | list[float]]:
    """``{name: median of runs, name + "_runs": every run}``."""
    runs = list(runs)
    return {name: statistics.median(runs), f"{name}_runs": runs}


def meets(value: float | None, sense: str, target: float) -> bool:
    """Whether ``value`` is on the ``sense`` side (``"<="`` or ``">="``) of ``target``;
    False when it is None (not measured).
    """
    if value is None:
        return False
    return value <= target if sense == "<=" else value >= target


def verdict(ok: bool) -> str:
    """The word a table prints for a target."""
    return "ok" if ok else "MISSED"
