"""Fault injection for ``mpigc train --faults SPEC`` (no MPI here).

Faults are what straggler models (SPEC section 7) cannot express: a worker that reports
progress normally and then does not send its vector, a worker that never does anything,
a worker whose vector is not finite, a worker process that really dies. Every rank parses
the same spec, so each worker knows its own faults without communicating.

Grammar::

    SPEC   := FAULT ('+' FAULT)*
    FAULT  := stall:worker=W,seconds=S[,iteration=SEL]
            | fail:worker=W[,iteration=SEL]
            | nan:worker=W[,iteration=SEL]
            | kill:worker=W,iteration=I[,chunks=K][,seconds=S]
    SEL    := I | A-B            (0-based iterations; omitted: every iteration)

* ``stall``: after the encode-and-transmit signal, the worker sleeps S seconds before it
  sends its vector (it may be dropped by the PS's transmit timeout; a stall of several
  iteration times makes a worker that lags several iterations).
* ``fail``: the worker processes and reports nothing in those iterations (it still takes
  part in every collective).
* ``nan``: the worker's vector is NaN (the PS stops the run, exit status
  :data:`mpigc.errors.EXIT_NONFINITE`).
* ``kill``: the worker process SIGKILLs itself in iteration I, at the first point where it
  has finished K chunks (default 0) and S seconds (default 0) have passed since the
  iteration's model arrived: between row blocks, between the slices of an injected delay,
  or at the latest when the state signal arrives. Nothing is flushed or sent: a real
  death. Under ULFM the run goes on without it (:mod:`mpigc.runtime.comm`); elsewhere
  the launcher ends the job. Kill faults are not part of a checkpoint's fingerprint
  (:meth:`FaultPlan.trajectory_spec`), so a run stopped by them can be resumed without.
"""

from __future__ import annotations

import math
import os
import signal
from dataclasses import dataclass
from typing import NoReturn, Optional

from mpigc.errors import UsageError, require

KINDS = {"stall": ("worker", "seconds", "iteration"),
         "fail": ("worker", "iteration"),
         "nan": ("worker", "iteration"),
         "kill": ("worker", "iteration", "chunks", "seconds")}
REQUIRED = {"stall": ("worker", "seconds"), "fail": ("worker",), "nan": ("worker",),
            "kill": ("worker", "iteration")}


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` on ``worker`` in iterations ``first..last`` (None: unbounded)."""

    kind: str
    worker: int
    first: int = 0
    last: float = math.inf
    seconds: float = 0.0
    chunks: int = 0

    def active(self, worker: int, iteration: int) -> bool:
        """Whether this fault acts on ``worker`` in ``iteration``."""
        return worker == self.worker and self.first <= iteration <= self.last


def _int(text, key, part):
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--faults {part!r}: {key}={text!r} is not an integer") from None
    require(value >= 0, f"--faults {part!r}: {key} must be >= 0, got {value}")
    return value


def _parse_one(part):
    kind, sep, rest = part.partition(":")
    kind = kind.strip()
    require(kind in KINDS, f"--faults {part!r}: unknown fault {kind!r} (choose from "
            f"{', '.join(KINDS)})")
    params = {}
    for item in rest.split(",") if sep and rest.strip() else []:
        key, eq, value = item.partition("=")
        key = key.strip()
        require(eq and value.strip(), f"--faults {part!r}: expected key=value, got {item!r}")
        require(key in KINDS[kind], f"--faults {part!r}: unknown key {key!r} for {kind} "
                f"(allowed: {', '.join(KINDS[kind])})")
        require(key not in params, f"--faults {part!r}: {key} given twice")
        params[key] = value.strip()
    missing = [k for k in REQUIRED[kind] if k not in params]
    require(not missing, f"--faults {part!r}: missing {', '.join(missing)}")
    fault = {"kind": kind, "worker": _int(params["worker"], "worker", part)}
    if "iteration" in params:
        a, dash, b = params["iteration"].partition("-")
        fault["first"] = _int(a, "iteration", part)
        fault["last"] = _int(b, "iteration", part) if dash else fault["first"]
        require(fault["last"] >= fault["first"], f"--faults {part!r}: empty iteration "
                f"range {params['iteration']!r}")
    if kind == "kill":
        require(fault["first"] == fault["last"], f"--faults {part!r}: a worker dies once: "
                f"iteration must be one number, got {params['iteration']!r}")
        fault["chunks"] = _int(params.get("chunks", "0"), "chunks", part)
    if "seconds" in params:
        try:
            seconds = float(params["seconds"])
        except ValueError:
            raise UsageError(f"--faults {part!r}: seconds={params['seconds']!r} is not a "
                             f"number") from None
        zero = kind == "kill"  # kill: 0 s is "as soon as the chunks are done"
        require(math.isfinite(seconds) and (seconds > 0 or zero and seconds == 0),
                f"--faults {part!r}: seconds must be a {'non-negative' if zero else 'positive'}"
                f" finite number, got {params['seconds']!r}")
        fault["seconds"] = seconds
    return Fault(**fault)


class FaultPlan:
    """The faults of a run, queried by worker and iteration.

    Parameters
    ----------
    spec : str or None
        See the module docstring; None or '' means no fault.
    """

    def __init__(self, spec: Optional[str] = None):
        self.spec = spec or ""
        parts = [p.strip() for p in self.spec.split("+")] if self.spec.strip() else []
        require(all(parts), f"--faults {spec!r}: empty fault between '+'")
        self.faults = tuple(_parse_one(p) for p in parts)

    def __bool__(self):
        return bool(self.faults)

    def check_workers(self, n_workers: int) -> FaultPlan:
        """UsageError unless every fault names a worker below ``n_workers``."""
        for f in self.faults:
            require(f.worker < n_workers, f"--faults {self.spec!r}: worker {f.worker} does "
                    f"not exist (the run has {n_workers} workers, 0..{n_workers - 1})")
        return self

    def _active(self, kind, worker, iteration):
        return [f for f in self.faults if f.kind == kind and f.active(worker, iteration)]

    def stall_seconds(self, worker: int, iteration: int) -> float:
        """Seconds ``worker`` waits before sending its vector in ``iteration`` (0: none)."""
        return sum(f.seconds for f in self._active("stall", worker, iteration))

    def fails(self, worker: int, iteration: int) -> bool:
        """Whether ``worker`` does nothing in ``iteration``."""
        return bool(self._active("fail", worker, iteration))

    def corrupts(self, worker: int, iteration: int) -> bool:
        """Whether ``worker``'s vector is NaN in ``iteration``."""
        return bool(self._active("nan", worker, iteration))

    def kill_point(self, worker: int, iteration: int) -> Optional[tuple[int, float]]:
        """``(chunks, seconds)`` at which ``worker`` dies in ``iteration``, or None."""
        kills = self._active("kill", worker, iteration)
        return min((f.chunks, f.seconds) for f in kills) if kills else None

    def trajectory_spec(self) -> Optional[str]:
        """The spec without its kill faults: what a checkpoint's fingerprint compares."""
        return "+".join(p.strip() for p in self.spec.split("+")
                        if p.strip() and not p.strip().startswith("kill")) or None


def die() -> NoReturn:
    """End this process at once with SIGKILL, as an out-of-memory kill or a lost node would."""
    os.kill(os.getpid(), signal.SIGKILL)
