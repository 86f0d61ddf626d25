"""Straggler models of SPEC section 7: per-iteration slowdown factors for every worker.

A model turns ``(seed, iteration, worker)`` into a slowdown factor F >= 0 (``inf``: the
worker fails in that iteration). Each component of a ``'+'``-joined spec draws the whole
vector of N factors from its own generator, seeded by ``(seed, component, iteration)``,
so every MPI rank and the simulator compute the same vector without communicating, and
the factors of an iteration do not depend on which iterations were drawn before: the
position of the random stream *is* the iteration number (checkpoints store nothing else).

Grammar::

    SPEC  := MODEL ('+' MODEL)*
    MODEL := none | exp:mean=M | shifted-exp:shift=A,rate=R | pareto:alpha=A
           | bimodal:p=P,slowdown=K | persistent:frac=F,slowdown=K | fail:p=P | trace:FILE

A trace file (text with one whitespace- or comma-separated row per iteration, or a 2-D
``.npy`` array) holds N factors per row (``inf`` marks a failure); iteration t uses row
``t mod rows``, so a short trace repeats. The file name cannot contain '+' (the join).
Factors multiply; a failure (``inf``) wins.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mpigc.errors import UsageError, require


def _rng(seed, component, iteration=None):
    """Generator of one component in one iteration; ``iteration=None``: its static draw."""
    key = (component,) if iteration is None else (component, iteration)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _number(name, params, key, spec):
    try:
        value = float(params[key])
    except ValueError:
        raise UsageError(f"straggler model {name!r}: {key}={params[key]!r} is not a number "
                         f"(in {spec!r})") from None
    require(math.isfinite(value), f"straggler model {name!r}: {key} must be finite, got "
            f"{params[key]!r}")
    return value


class _Component:
    """One model of a '+'-joined spec; ``draw`` returns its N factors for an iteration."""

    can_fail = False

    def __init__(self, index, seed, n_workers):
        self.index, self.seed, self.n = index, seed, n_workers

    def rng(self, iteration):
        return _rng(self.seed, self.index, iteration)


class _Random(_Component):
    """A model drawn afresh every iteration: ``sample(rng, n, **params)`` gives the N factors."""

    def __init__(self, index, seed, n, sample, **params):
        super().__init__(index, seed, n)
        self.sample, self.params = sample, params
        self.can_fail = sample is _fail

    def draw(self, iteration):
        return self.sample(self.rng(iteration), self.n, **self.params)


def _exp(rng, n, mean):
    return 1.0 + rng.exponential(mean, n)


def _shifted_exp(rng, n, shift, rate):
    return shift + rng.exponential(1.0 / rate, n)


def _pareto(rng, n, alpha):
    # numpy's pareto is Lomax (Pareto II); adding 1 gives the classical Pareto, minimum 1
    return 1.0 + rng.pareto(alpha, n)


def _bimodal(rng, n, p, slowdown):
    return np.where(rng.random(n) < p, slowdown, 1.0)


def _fail(rng, n, p):
    return np.where(rng.random(n) < p, np.inf, 1.0)


class _Persistent(_Component):
    def __init__(self, index, seed, n, frac, slowdown):
        super().__init__(index, seed, n)
        # ceil(F0 N), guarded against 0.1 * 30 = 3.0000000000000004
        slow = _rng(seed, index).permutation(n)[: math.ceil(frac * n - 1e-9)]
        self.vector = np.ones(n)
        self.vector[slow] = slowdown

    def draw(self, iteration):
        return self.vector


class _Trace(_Component):
    def __init__(self, index, seed, n, path):
        super().__init__(index, seed, n)
        self.rows = _read_trace(path, n)
        self.can_fail = bool(np.isinf(self.rows).any())

    def draw(self, iteration):
        return self.rows[iteration % len(self.rows)]


def _read_trace(path, n_workers):
    p = Path(path)
    require(p.is_file(), f"straggler trace file {path!r} does not exist")
    try:
        if p.suffix == ".npy":
            rows = np.load(p, allow_pickle=False)
        else:
            text = p.read_text().replace(",", " ")
            rows = np.array([[float(x) for x in line.split()] for line in text.splitlines()
                             if line.strip() and not line.lstrip().startswith("#")])
    except ValueError as exc:
        raise UsageError(f"straggler trace file {path!r} is not a table of numbers: "
                         f"{exc}") from None
    rows = np.asarray(rows, dtype=float)
    if rows.ndim == 1 and n_workers == 1:
        rows = rows[:, None]
    require(rows.ndim == 2 and rows.shape[0] >= 1 and rows.shape[1] == n_workers,
            f"straggler trace file {path!r} has shape {rows.shape}; need one row per iteration "
            f"with {n_workers} factors (one per worker)")
    bad = np.argwhere(np.isnan(rows) | (rows <= 0))
    if len(bad):
        r, c = bad[0]
        raise UsageError(f"straggler trace file {path!r}: factor {rows[r, c]} at row {r + 1}, "
                         f"column {c + 1} is not a positive number (use inf for a failure)")
    return rows


# name -> (sample function, or _Persistent, {parameter: (check, message)})
_POSITIVE = (lambda v: v > 0, "must be > 0")
_NONNEG = (lambda v: v >= 0, "must be >= 0")
_PROB = (lambda v: 0 <= v <= 1, "must be a probability in [0, 1]")
_SLOWDOWN = (lambda v: v >= 1, "must be >= 1")
_MODELS = {
    "exp": (_exp, {"mean": _POSITIVE}),
    "shifted-exp": (_shifted_exp, {"shift": _NONNEG, "rate": _POSITIVE}),
    "pareto": (_pareto, {"alpha": _POSITIVE}),
    "bimodal": (_bimodal, {"p": _PROB, "slowdown": _SLOWDOWN}),
    "persistent": (_Persistent, {"frac": _PROB, "slowdown": _SLOWDOWN}),
    "fail": (_fail, {"p": _PROB}),
}


def _component(part, index, seed, n_workers, spec):
    name, colon, body = part.partition(":")
    name = name.strip()
    if name == "none":
        require(not colon, f"straggler model 'none' takes no parameters, got {part!r}")
        return None
    if name == "trace":
        require(body.strip() != "", f"straggler model 'trace' needs a file: trace:FILE "
                f"(in {spec!r})")
        return _Trace(index, seed, n_workers, body.strip())
    if name not in _MODELS:
        raise UsageError(f"unknown straggler model {name!r} in {spec!r} (choose from none, "
                         f"{', '.join(_MODELS)}, trace)")
    kind, checks = _MODELS[name]
    params = {}
    for item in body.split(",") if body.strip() else []:
        key, eq, value = (s.strip() for s in item.partition("="))
        require(eq and key and value, f"straggler model {name!r}: expected KEY=VALUE, got "
                f"{item.strip()!r} (in {spec!r})")
        require(key in checks, f"straggler model {name!r} has no parameter {key!r} (it takes "
                f"{', '.join(checks)})")
        require(key not in params, f"straggler model {name!r}: parameter {key!r} given twice")
        params[key] = value
    missing = [k for k in checks if k not in params]
    require(not missing, f"straggler model {name!r} needs {', '.join(k + '=' for k in missing)}"
            f" (in {spec!r})")
    values = {}
    for key, (ok, message) in checks.items():
        values[key] = _number(name, params, key, spec)
        require(ok(values[key]), f"straggler model {name!r}: {key} {message}, got "
                f"{params[key]}")
    if kind is _Persistent:
        return _Persistent(index, seed, n_workers, **values)
    return _Random(index, seed, n_workers, kind, **values)


class StragglerModel:
    """Slowdown factors of all workers, a pure function of (seed, iteration, worker).

    Build with :func:`parse_stragglers`. The random stream needs no state: the factors
    of iteration t are drawn from generators seeded by (seed, model component, t), so a
    checkpoint's "RNG position" is the iteration number itself.
    """

    def __init__(self, spec: str, n_workers: int, seed: int, components: list[_Component]):
        self.spec, self.n_workers, self.seed = spec, n_workers, seed
        self._components = components
        self._cached = (None, None)

    @property
    def can_fail(self) -> bool:
        """True when some worker may fail (factor ``inf``): a fail model or a trace with inf."""
        return any(c.can_fail for c in self._components)

    def factors(self, iteration: int) -> np.ndarray:
        """Slowdown factors of iteration ``iteration``.

        Parameters
        ----------
        iteration : int
            Iteration (or simulator trial) number, >= 0.

        Returns
        -------
        numpy.ndarray
            (N,) float; ``inf`` marks a worker that fails in this iteration. A fresh
            array the caller may modify.
        """
        iteration = int(iteration)
        require(iteration >= 0, f"iteration must be >= 0, got {iteration}")
        if self._cached[0] != iteration:
            f = np.ones(self.n_workers)
            for c in self._components:
                f *= c.draw(iteration)
            self._cached = (iteration, f)
        return self._cached[1].copy()

    def factor(self, iteration: int, worker: int) -> float:
        """Factor of one worker: ``factors(iteration)[worker]`` (the vector is cached)."""
        require(0 <= worker < self.n_workers, f"worker must be in [0, {self.n_workers}), "
                f"got {worker}")
        self.factors(iteration)
        return float(self._cached[1][worker])

    def __repr__(self):
        return f"StragglerModel({self.spec!r}, n_workers={self.n_workers}, seed={self.seed})"


def parse_stragglers(spec: str, n_workers: int, seed: int = 0) -> StragglerModel:
    """Parse a straggler spec (SPEC section 7) into a :class:`StragglerModel`.

    Parameters
    ----------
    spec : str
        e.g. ``"none"``, ``"shifted-exp:shift=1,rate=1"``, ``"bimodal:p=0.1,slowdown=8+fail:p=0.01"``.
    n_workers : int
        N, the length of every factor vector.
    seed : int
        Non-negative run seed.

    Returns
    -------
    StragglerModel

    Raises
    ------
    UsageError
        Naming the bad part: unknown model, missing, repeated, unknown or non-numeric
        parameter, value out of range, unreadable or wrongly shaped trace file.
    """
    require(isinstance(spec, str) and spec.strip() != "", f"empty straggler spec {spec!r}")
    require(int(n_workers) >= 1, f"need at least one worker, got {n_workers}")
    require(int(seed) >= 0, f"--seed must be >= 0 for straggler draws, got {seed}")
    parts = spec.split("+")
    components = []
    for index, part in enumerate(parts):
        require(part.strip() != "", f"empty model in straggler spec {spec!r}")
        c = _component(part.strip(), index, int(seed), int(n_workers), spec)
        if c is not None:
            components.append(c)
    return StragglerModel(spec, int(n_workers), int(seed), components)
