"""Outputs of a training run (SPEC section 9) and the PS's progress display.

``--out DIR`` receives ``summary.json``, ``iterations.jsonl`` and ``model.npz``.
``summary.json`` and ``model.npz`` appear whole or not at all: each is written under a
temporary name in DIR and renamed (``os.replace`` is atomic on POSIX); ``summary.json``
comes last, so its presence says the run finished.

``iterations.jsonl`` grows while the run goes on (``tail -f`` it): each record is one line
appended with a single ``write``, so a line that ends with a newline is a whole record;
a reader takes only such lines (:func:`read_records`), never the unterminated tail of a
write in progress or of a killed run. Its first version (empty, or the records a resumed
run continues) is itself written atomically, so a resume never loses the old records.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO, TextIO

import numpy as np

ITERATIONS = "iterations.jsonl"
# mkstemp creates 0600 files; outputs get the permissions of an ordinary file instead.
_UMASK = os.umask(0)
os.umask(_UMASK)


def clean(value: Any) -> Any:
    """JSON-safe copy: NumPy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any],
                 sync: bool = False) -> None:
    """Write through ``write(file)`` into a temporary file next to ``path``, then rename.

    With ``sync`` the file is flushed to disk before the rename and the directory after it,
    so the new contents survive a crash of the machine (checkpoints need this).
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if sync:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    atomic_write(path, lambda f: f.write((json.dumps(clean(obj), indent=2) + "\n").encode()))


def write_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """Atomically write an uncompressed ``.npz`` archive."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


def read_records(path: str | os.PathLike) -> list[str]:
    """The whole records (newline-terminated lines, JSON text) of an ``iterations.jsonl``.

    A last line without its newline is a record still being written (or the remains of a
    killed run) and is left out; blank lines are skipped. OSError if ``path`` is unreadable.
    """
    with open(path, "rb") as f:
        text = f.read().decode()
    return [line for line in text.split("\n")[:-1] if line.strip()]


def check_out_dir(path: str | os.PathLike) -> str | None:
    """Check that ``path`` can be created (or written, if it exists), creating nothing.

    The directory itself is made by :class:`RunLog`, after every rank has agreed that the
    run can start, so bad input never leaves an empty output directory behind.
    Returns None, or a one-line message naming the problem.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        return f"--out {path} exists and is not a directory"
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return f"--out {path}: cannot create it ({probe} is not a directory)"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return f"--out {path}: cannot write there ({exc.strerror or exc})"
    return None


class RunLog:
    """Per-iteration records, progress display and the final files of rank 0.

    Parameters
    ----------
    out : str or None
        Output directory (already checked with :func:`check_out_dir`), or None.
    iterations : int
        Iterations the run will do (for the progress display).
    quiet : bool
        No progress display.
    stream : file, optional
        Where progress goes (default stderr): a bar when it is a terminal, otherwise a
        plain line about every tenth of the run.
    """

    def __init__(self, out: str | None, iterations: int, quiet: bool = False,
                 stream: TextIO | None = None, records: list[dict] | None = None):
        self.out, self.total, self.quiet = out, iterations, quiet
        self.records = records  # a list: every record is appended to it too (Python API)
        self.stream = sys.stderr if stream is None else stream
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = max(1, iterations // 10)
        self.triggers = {}  # trigger -> iterations (records themselves are not kept)
        if out:
            os.makedirs(out, exist_ok=True)
        # Opened at the first record (or by restore), so that until then the directory
        # keeps what it held: a resume reads its records from there.
        self._file = None

    def _start(self, lines=()):
        """Atomically replace ``iterations.jsonl`` by ``lines``, then append to it."""
        path = os.path.join(self.out, ITERATIONS)
        atomic_write(path, lambda f: f.write("".join(line + "\n" for line in lines).encode()))
        self._file = open(path, "ab", buffering=0)

    def iteration(self, record: Mapping[str, Any]) -> None:
        """Keep one iteration's record (dict), append it to iterations.jsonl, show progress."""
        record = clean(record)
        if self.records is not None:
            self.records.append(record)
        self.triggers[record["trigger"]] = self.triggers.get(record["trigger"], 0) + 1
        if self.out:
            if self._file is None:
                self._start()
            # one unbuffered write per record: readers never see half a line as a record
            self._file.write((json.dumps(record) + "\n").encode())
        if not self.quiet:
            self._show(record)

    def event(self, text: str) -> None:
        """One line about something that happened to the run (a worker died)."""
        if not self.quiet:
            self.stream.write(("\n" if self.tty else "") + f"mpigc: {text}\n")
            self.stream.flush()

    def _show(self, record):
        done = record["iteration"] + 1
        loss = record["loss"]
        loss = "nan" if loss is None else f"{loss:.6g}"
        text = f"iteration {done}/{self.total}  loss {loss}  {record['duration_s']:.4f} s"
        if self.tty:
            width = 30
            filled = int(width * done / max(self.total, 1))
            end = "\n" if done >= self.total else ""
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}{end}")
            self.stream.flush()
        elif done % self.every == 0 or done == self.total:
            self.stream.write(f"mpigc: {text}\n")
            self.stream.flush()

    def finish(self, summary: Mapping[str, Any], model: Mapping[str, Any]) -> None:
        """Write ``model.npz``, ``iterations.jsonl`` and last ``summary.json`` (when --out).

        ``model`` is a dict of arrays/scalars for ``model.npz``.
        """
        if not self.out:
            return
        self._close()
        write_npz(os.path.join(self.out, "model.npz"), **model)
        write_json(os.path.join(self.out, "summary.json"), summary)

    def restore(self, lines: Iterable[str], triggers: Mapping[str, int]) -> None:
        """Continue a checkpointed run: its record lines (JSON text) come first in the
        iterations file, and ``triggers`` (trigger -> iterations) counts them.
        """
        self.triggers = dict(triggers)
        if self.out:
            self._start(line.rstrip("\n") for line in lines)

    def suspend(self) -> None:
        """The run stops at a checkpoint: close ``iterations.jsonl`` (no summary)."""
        if self.out:
            self._close()

    def _close(self):
        if self._file is None:  # a run of 0 iterations still leaves its (empty) file
            self._start()
        self._file.close()
