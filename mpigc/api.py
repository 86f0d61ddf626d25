"""The Python API: :func:`train`, with the defaults and the validation of ``mpigc train``.

Every option of ``mpigc train`` is a keyword argument of the same name in Python spelling
(``--fit-intercept`` is ``fit_intercept``), with the same default (one table:
:class:`mpigc.config.TrainConfig`). Errors name the parameter both ways (``ell (--ell)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from mpigc import config
from mpigc.errors import UsageError
from mpigc.estimator import LinearModel

_FLAG = re.compile(r"--([a-z0-9]+(?:-[a-z0-9]+)*)")
_NAMES = {f.name for f in config.OPTIONS}


@dataclass
class TrainResult:
    """What :func:`train` returns, the same on every rank of ``comm``.

    Attributes
    ----------
    model : LinearModel or None
        The trained model (None when the run stopped at a checkpoint before its end).
    summary : dict
        ``summary.json``'s object (None as ``model``).
    history : list of dict
        The records of ``iterations.jsonl``, one per evaluation, of this process's run.
    status : int
        The exit status ``mpigc train`` would return (0: finished; 3: stopped by a
        non-finite gradient, ``model`` is the last good one; 4: workers it could not do
        without died, see ``--faults``).
    rank : int
        This process's rank in ``comm`` (0: the parameter server).
    """

    model: Optional[LinearModel]
    summary: Optional[dict]
    history: list = field(default_factory=list)
    status: int = 0
    rank: int = 0


def python_names(message: str) -> str:
    """``message`` with each ``--option`` of train shown as ``option (--option)``."""
    def name(match):
        py = match.group(1).replace("-", "_")
        return f"{py} ({match.group(0)})" if py in _NAMES else match.group(0)
    return _FLAG.sub(name, message)


def _as_command_line(options: dict) -> dict:
    """Check the Python types of ``options`` (what argparse does for the command line)."""
    fields = {f.name: f for f in config.OPTIONS}
    values = {}
    for name, value in options.items():
        if name not in fields:
            raise TypeError(f"train() got an unexpected keyword argument {name!r}")
        meta, flag = fields[name].metadata, "--" + name.replace("_", "-")
        kind = meta["type"]
        if value is None or name == "lr":
            values[name] = None if value is None else str(value)
            continue
        if fields[name].default is False and not isinstance(value, (bool, np.bool_)):
            raise UsageError(f"{flag} is a flag: give True or False, got {value!r}")
        if kind is int and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
            raise UsageError(f"{flag} must be an integer, got {value!r}")
        if kind is float and (isinstance(value, bool)
                              or not isinstance(value, (int, float, np.number))):
            raise UsageError(f"{flag} must be a number, got {value!r}")
        if meta["choices"] is not None and value not in meta["choices"]:
            raise UsageError(f"{flag} must be one of {', '.join(meta['choices'])}, got "
                             f"{value!r}")
        values[name] = value
    return values


def train(data: Any = None, *, comm: Any = None, **options: Any) -> TrainResult:
    """Train a model over MPI: every rank of ``comm`` calls it (run under ``mpiexec``).

    Rank 0 of ``comm`` is the parameter server, the others are the workers, as for
    ``mpigc train``; outputs go where ``out`` says (nothing is written without it).

    Parameters
    ----------
    data : str or (X, y), optional
        A data spec as ``--data`` takes it (a file, ``synthetic:...``; default the
        built-in synthetic problem), or arrays already in memory: X dense or
        scipy.sparse (n, d), y (n,), the same on every rank.
    comm : mpi4py.MPI.Intracomm, optional
        Default ``MPI.COMM_WORLD``; any intra-communicator of at least 2 ranks.
    **options
        Any option of ``mpigc train`` by its Python name, e.g. ``model="linear"``,
        ``scheme="gc"``, ``ell=2``, ``optimizer="lbfgs"``, ``tol=1e-8``, ``l2=1e-3``,
        ``fit_intercept=True``, ``standardize=True``, ``validation_fraction=0.2``,
        ``out="run1"`` (``mpigc train --help`` lists them, with their defaults).

    Returns
    -------
    TrainResult

    Raises
    ------
    UsageError (a ValueError)
        Bad options or data, on every rank, naming the parameter (``ell (--ell)``).
    TypeError
        A keyword that is no option of ``train``.
    """
    from mpigc.runtime import launch

    launch.configure()  # thread settings; MPICH's yield settings if MPI is not started yet
    source = None
    if data is not None and not isinstance(data, str):
        source = _array_source(data)
        data = f"array:{source.n_rows}x{source.n_features}"
    from mpigc.runtime import train as runtime_train

    try:
        args = config.arguments(data=data, **_as_command_line(options))
        if comm is not None and comm.Is_inter():
            raise UsageError("comm must be an intra-communicator, got an inter-communicator")
        job = runtime_train.run(args, comm=comm, source=source, keep_history=True)
    except UsageError as exc:
        raise UsageError(python_names(str(exc))) from None
    outcome = job.comm.bcast_object(job.outcome)
    if outcome is None:
        return TrainResult(None, None, [], job.status, job.comm.rank)
    model = outcome["model"]
    fitted = LinearModel(model["coef"], model["intercept"], model["model"],
                         classes=model.get("classes"),
                         metadata={k: v for k, v in model.items()
                                   if k not in ("coef", "intercept", "classes")})
    return TrainResult(fitted, outcome["summary"], outcome["history"] or [], job.status,
                       job.comm.rank)


def _array_source(data):
    from mpigc.data import ArraySource

    try:
        X, y = data
    except (TypeError, ValueError):
        raise UsageError("data must be a data spec (str) or a pair (X, y)") from None
    if not hasattr(X, "shape") or len(X.shape) != 2:
        raise UsageError(f"data: X must be a 2-D array or sparse matrix, got "
                         f"{type(X).__name__}")
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise UsageError(f"data: y must have one label per row of X ({X.shape[0]}), got "
                         f"shape {y.shape}")
    return ArraySource(X, y, "arrays")
