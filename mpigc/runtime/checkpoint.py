"""Checkpoints of ``mpigc train`` (``--checkpoint-every``, SIGUSR1/SIGTERM, ``--resume``).

No MPI here: rank 0 saves and loads, :mod:`~mpigc.runtime.loop` broadcasts the decision.

A checkpoint is ``DIR/checkpoint.npz`` (uncompressed, no pickles), written atomically
(temporary file in DIR, fsync, rename, fsync of DIR: a reader sees the old checkpoint or
the new one, never half of one; a leftover temporary file is ignored). It is taken between two
optimizer steps (never inside a line search) and holds:

* ``format`` (:data:`FORMAT`), ``iteration``: the next evaluation (protocol iteration) to
  run (``0..iteration-1`` are done), ``rng_position``: the same number, because the
  straggler draws are a pure function of ``(seed, iteration)`` (:mod:`mpigc.stragglers`);
* ``w``: the model (user coordinates); ``opt_<key>``: the optimizer's ``state_dict`` in its
  own coordinates (GD: name, lr, iteration = steps done, w; Nesterov also mu, t, y; L-BFGS
  the value and gradient at w and the curvature pairs), restored exactly;
* ``lr``: the step actually used (``--lr auto`` is not recomputed on resume; NaN for
  L-BFGS), ``scale``: the optimizer's feature scale (not recomputed either);
* ``durations``, ``grad_rel_err``, ``stale``, ``triggers`` (JSON), ``elapsed_s``,
  ``starts`` (the iteration at which each run segment started): what ``summary.json``
  needs to cover the whole run;
* ``fingerprint`` (JSON of :data:`FINGERPRINT_OPTIONS` and the world size) and
  ``fingerprint_sha256``: a resume with a different configuration is refused.

The per-iteration records stay in the run's ``iterations.jsonl``; a resume copies the
first ``iteration`` of them (see :func:`previous_records`).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import zipfile
from dataclasses import dataclass

import numpy as np

from mpigc.errors import UsageError
from mpigc.faults import FaultPlan
from mpigc.runtime.log import ITERATIONS, atomic_write, read_records

FILENAME = "checkpoint.npz"
FORMAT = "mpigc-checkpoint-2"
# Options that change the trajectory (not --iterations, --out, --resume, --quiet,
# --checkpoint-every, --verify, and not the timeouts --iteration-timeout and
# --transmit-timeout). File-valued options (assignment, ordering, trace stragglers, data)
# are compared by name, not by contents.
FINGERPRINT_OPTIONS = ("scheme", "assignment", "load", "ell", "ordering", "seed", "beta",
                       "straggler_tolerance", "deadline", "stragglers", "faults",
                       "chunk_time", "data", "model", "optimizer", "lr", "history", "tol",
                       "precondition", "l2", "dtype", "row_block")
# Options added later: in the fingerprint only when set, so older checkpoints still resume.
FINGERPRINT_IF_SET = ("fit_intercept", "standardize", "validation_fraction")
WORLD = "world_size"
STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


def path(directory: str) -> str:
    """``DIR/checkpoint.npz``."""
    return os.path.join(directory, FILENAME)


def fingerprint(cfg, world_size: int) -> dict:
    """The options of ``cfg`` that change the trajectory, and the world size (a dict)."""
    fp = {k: getattr(cfg, k) for k in FINGERPRINT_OPTIONS}
    fp.update({k: getattr(cfg, k) for k in FINGERPRINT_IF_SET if getattr(cfg, k)})
    fp["faults"] = FaultPlan(cfg.faults).trajectory_spec()  # a death is not a trajectory
    fp[WORLD] = int(world_size)
    return fp


def _digest(fp):
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()


def _show(key, value):
    if key == WORLD:
        return f"{value} MPI ranks"
    if value is None:
        return f"--{key.replace('_', '-')} {'auto' if key == 'lr' else '(default)'}"
    return f"--{key.replace('_', '-')} {value}"


def check_fingerprint(saved: dict, current: dict, directory: str) -> None:
    """Raise UsageError naming the first option where ``saved`` and ``current`` differ."""
    if _digest(saved) == _digest(current):
        return
    for key in sorted(set(saved) | set(current), key=lambda k: (k == WORLD, k)):
        if saved.get(key) != current.get(key):
            raise UsageError(f"checkpoint in {directory} was written with "
                             f"{_show(key, saved.get(key))}, this run has "
                             f"{_show(key, current.get(key))}")


@dataclass
class Checkpoint:
    """What :func:`load` returns (see the module docstring for the fields)."""

    iteration: int
    lr: float
    optimizer: dict
    fingerprint: dict
    durations: list
    grad_rel_err: list
    stale: int
    triggers: dict
    elapsed_s: float
    starts: list
    scale: np.ndarray

    @property
    def steps(self):
        """Optimizer steps done."""
        return int(self.optimizer["iteration"])


def save(directory: str, ck: Checkpoint) -> None:
    """Atomically write the :class:`Checkpoint` ``ck`` to ``DIR/checkpoint.npz``."""
    arrays = {
        "format": np.array(FORMAT), "iteration": np.int64(ck.iteration),
        "rng_position": np.int64(ck.iteration),
        "lr": np.float64(np.nan if ck.lr is None else ck.lr),
        "scale": np.asarray(ck.scale, dtype=np.float64),
        "w": np.asarray(ck.optimizer["w"], dtype=np.float64) / ck.scale,
        "durations": np.asarray(ck.durations, dtype=np.float64),
        "grad_rel_err": np.asarray(ck.grad_rel_err, dtype=np.float64),
        "stale": np.int64(ck.stale), "triggers": np.array(json.dumps(ck.triggers)),
        "elapsed_s": np.float64(ck.elapsed_s), "starts": np.asarray(ck.starts, dtype=np.int64),
        "fingerprint": np.array(json.dumps(ck.fingerprint, sort_keys=True)),
        "fingerprint_sha256": np.array(_digest(ck.fingerprint)),
    }
    for key, value in ck.optimizer.items():
        arrays[f"opt_{key}"] = np.asarray(value)
    atomic_write(path(directory), lambda f: np.savez(f, **arrays), sync=True)


def load(directory: str) -> Checkpoint:
    """Read ``DIR/checkpoint.npz``; a missing or damaged file raises UsageError."""
    file = path(directory)
    if not os.path.isfile(file):
        raise UsageError(f"--resume {directory}: no checkpoint ({file} does not exist)")
    try:
        with np.load(file, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        if str(data["format"]) != FORMAT:
            raise ValueError(f"format {str(data['format'])!r}, expected {FORMAT!r}")
        fp = json.loads(str(data["fingerprint"]))
        if str(data["fingerprint_sha256"]) != _digest(fp):
            raise ValueError("fingerprint does not match its hash")
        optimizer = {k[4:]: (v if v.ndim else v.item()) for k, v in data.items()
                     if k.startswith("opt_")}
        iteration = int(data["iteration"])
        durations = data["durations"].tolist()
        if len(durations) != iteration or int(data["rng_position"]) != iteration:
            raise ValueError(f"{len(durations)} durations for iteration {iteration}")
        lr = float(data["lr"])
        return Checkpoint(
            iteration=iteration, lr=lr if np.isfinite(lr) else None, optimizer=optimizer,
            fingerprint=fp, scale=np.array(data["scale"], dtype=np.float64),
            durations=durations, grad_rel_err=data["grad_rel_err"].tolist(),
            stale=int(data["stale"]), triggers=json.loads(str(data["triggers"])),
            elapsed_s=float(data["elapsed_s"]), starts=data["starts"].tolist())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise UsageError(f"--resume {directory}: {file} is not a valid checkpoint "
                         f"({exc})") from None


def previous_records(directory: str, count: int) -> list[str]:
    """The first ``count`` iteration records (JSON lines) of the run in ``directory``.

    Records past the checkpoint (written before a crash) are dropped, and so is a line the
    crash left unterminated. Returns fewer than ``count`` lines when the file lacks some
    (none when it is missing).
    """
    try:
        return read_records(os.path.join(directory, ITERATIONS))[:count]
    except OSError:
        return []


class StopRequest:
    """A flag set by SIGUSR1 or SIGTERM (as Slurm sends before the time limit).

    The handler only sets the flag; rank 0 reads it at an iteration boundary. Every rank
    installs it (the default action of SIGUSR1 would kill a worker). A second SIGTERM
    while a stop is pending terminates the process (the way out of a stuck run).
    """

    def __init__(self):
        self.signum = None

    def install(self, signals=STOP_SIGNALS):
        """Catch ``signals`` from now on; returns self."""
        for s in signals:
            signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if signum == signal.SIGTERM and self.signum is not None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        self.signum = signum

    @property
    def requested(self):
        """Whether a stop signal has arrived."""
        return self.signum is not None
