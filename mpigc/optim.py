"""The optimizers of ``mpigc train``, each driven through one contract with the engines.

``evaluate(x) -> (loss, gradient)`` is the whole interface between an optimizer and the
distributed machinery: each call is one full evaluation of the objective and its gradient
at ``x`` (model broadcast, coded gradient and loss, decode). :meth:`step` takes one
optimizer step and calls ``evaluate`` once (GD, Nesterov) or once per line-search trial
(L-BFGS). The attribute ``w`` is the current iterate.

Stopping (:func:`gradient_tol`): ``converged(g)`` is tested on every gradient the
optimizer may stop at; :meth:`step` then returns :data:`CONVERGED` and ``w`` is that point.

``state_dict()`` returns plain NumPy arrays and numbers; ``load_state_dict`` restores them
exactly, so a resumed run repeats the uninterrupted trajectory bit for bit. Checkpoints
are taken between steps, never inside a line search.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np

from mpigc.errors import UsageError

CONVERGED, MAX_ITERATIONS, LINE_SEARCH_FAILED, SIGNAL = (
    "converged", "max_iterations", "line_search_failed", "signal")
STOP_REASONS = (CONVERGED, MAX_ITERATIONS, LINE_SEARCH_FAILED, SIGNAL)
# Strong Wolfe constants of Nocedal and Wright for quasi-Newton methods (and SciPy's).
WOLFE_C1, WOLFE_C2 = 1e-4, 0.9
# Trial points one line search may try before the step counts as failed.
LINE_SEARCH_MAX_TRIALS = 20
# A curvature pair is kept only if s.y > EPS * y.y (as L-BFGS-B): else H stops being
# positive definite, or rounding dominates the pair.
CURVATURE_EPS = np.finfo(np.float64).eps


def _check_lr(lr):
    lr = float(lr)
    if not (np.isfinite(lr) and lr > 0.0):
        raise UsageError(f"learning rate must be a finite number > 0, got {lr}")
    return lr


def _fista_next(t):
    """FISTA's ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``."""
    return (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0


def gradient_tol(tol, scale=None):
    """The ``--tol`` rule as a predicate on the optimizer's gradient (None: never stop).

    Converged when ``max_i |dF/dw_i| <= tol``: the max-norm of the full gradient of the
    objective in the user's coordinates, as scikit-learn's ``lbfgs`` solver uses ``tol``
    (SciPy's ``gtol``; absolute, not relative to the start). ``scale``: the optimizer runs
    in coordinates ``v = scale * w`` (:mod:`mpigc.scaling`), so ``dF/dw = scale * dF/dv``.
    """
    if tol is None:
        return None
    tol = float(tol)
    if not (np.isfinite(tol) and tol >= 0.0):
        raise UsageError(f"--tol must be a finite number >= 0, got {tol}")
    if scale is None:
        return lambda g: float(np.max(np.abs(g), initial=0.0)) <= tol
    scale = np.asarray(scale, dtype=np.float64)
    return lambda g: float(np.max(np.abs(scale * g), initial=0.0)) <= tol


@dataclass
class StepRecord:
    """What the last :meth:`step` evaluated: per evaluation whether it was a line-search
    trial, and which evaluation (index) the optimizer kept as its iterate (None: none).
    """

    line_search: list = field(default_factory=list)
    accepted: int = None


class _Optimizer:
    name = ""
    _fields = ("iteration", "w")

    def _check_state(self, state, keys):
        name = str(np.asarray(state.get("name", "")))
        if name != self.name:
            raise UsageError(f"checkpoint holds optimizer '{name}', this run uses '{self.name}'")
        missing = [k for k in keys if k not in state]
        if missing:
            raise UsageError(f"checkpoint lacks optimizer field '{missing[0]}'")
        if np.shape(state["w"]) != self.w.shape:
            raise UsageError(f"checkpoint model has shape {np.shape(state['w'])}, "
                             f"this run needs {self.w.shape}")


class GD(_Optimizer):
    """Gradient descent: ``w <- w - lr * grad F(w)``.

    Parameters
    ----------
    lr : float
        Step size (``1/L`` is safe for an L-smooth objective).
    w0 : array_like
        Starting point (copied).
    """

    name = "gd"
    uses_lr = True        # takes --lr (and --lr auto's 1/L)
    needs_exact = False   # works on approximate gradients too

    def __init__(self, lr, w0):
        self.lr = _check_lr(lr)
        self.w = np.array(w0, dtype=np.float64)
        self.iteration = 0
        self.last = StepRecord()

    def point(self):
        """Where to evaluate the gradient this iteration: the iterate itself."""
        return self.w

    def update(self, grad):
        """Take one step with the gradient evaluated at :meth:`point`; return the new ``w``."""
        self.w = self.w - self.lr * np.asarray(grad, dtype=np.float64)
        self.iteration += 1
        return self.w

    def step(self, evaluate, converged=None):
        """One step: the gradient at :meth:`point`, then :meth:`update` (unless converged,
        in which case ``w`` becomes that point). Returns :data:`CONVERGED` or None.
        """
        x = np.array(self.point(), dtype=np.float64)
        self.last = StepRecord()
        _, grad = evaluate(x)
        self.last = StepRecord(line_search=[False], accepted=0)
        if converged is not None and converged(grad):
            self.w = x
            return CONVERGED
        self.update(grad)
        return None

    def state_dict(self):
        """Everything needed to continue exactly: plain arrays and numbers."""
        return {"name": self.name, "lr": self.lr, "iteration": self.iteration,
                "w": self.w.copy()}

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` (from this optimizer kind, same dimension)."""
        self._check_state(state, ("lr", "iteration", "w"))
        self.lr = float(state["lr"])
        self.iteration = int(state["iteration"])
        self.w = np.array(state["w"], dtype=np.float64)


class Nesterov(GD):
    """Nesterov's accelerated gradient method.

    ``x_{k+1} = y_k - lr * grad F(y_k)``,  ``y_{k+1} = x_{k+1} + m_k (x_{k+1} - x_k)``,
    gradient evaluated at the look-ahead point ``y_k`` (:meth:`point`); ``w`` is ``x_k``.

    Momentum: with a strong-convexity modulus ``mu > 0`` (pass ``mu = l2``), the constant
    ``m = (1 - sqrt(mu lr)) / (1 + sqrt(mu lr))`` = ``(sqrt(L) - sqrt(mu)) / (sqrt(L) +
    sqrt(mu))`` for ``lr = 1/L``, which converges linearly; with ``mu = 0`` the FISTA
    sequence ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``, ``m_k = (t_k - 1) / t_{k+1}``.
    """

    name = "nesterov"

    def __init__(self, lr, w0, mu=0.0):
        super().__init__(lr, w0)
        self.mu = float(mu)
        if not (np.isfinite(self.mu) and self.mu >= 0.0):
            raise UsageError(f"strong-convexity modulus must be >= 0, got {mu}")
        self.y = self.w.copy()
        self.t = 1.0

    def point(self):
        """The look-ahead point ``y_k``."""
        return self.y

    def momentum(self):
        """Momentum ``m_k`` of the current step (advances nothing)."""
        if self.mu > 0.0:
            q = np.sqrt(min(self.mu * self.lr, 1.0))
            return (1.0 - q) / (1.0 + q)
        return (self.t - 1.0) / _fista_next(self.t)

    def update(self, grad):
        """One accelerated step with the gradient taken at :meth:`point`; returns ``x_{k+1}``."""
        m = self.momentum()
        x_new = self.y - self.lr * np.asarray(grad, dtype=np.float64)
        self.y = x_new + m * (x_new - self.w)
        self.t = _fista_next(self.t)
        self.w = x_new
        self.iteration += 1
        return self.w

    def state_dict(self):
        """Everything needed to continue exactly, the momentum state included."""
        state = super().state_dict()
        state.update(mu=self.mu, t=self.t, y=self.y.copy())
        return state

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` of a Nesterov optimizer."""
        self._check_state(state, ("lr", "iteration", "w", "mu", "t", "y"))
        super().load_state_dict(state)
        self.mu, self.t = float(state["mu"]), float(state["t"])
        self.y = np.array(state["y"], dtype=np.float64)


class LBFGS(_Optimizer):
    """Limited-memory BFGS with a strong-Wolfe line search (Nocedal and Wright, ch. 7, 3.5).

    Direction ``p = -H g`` by the two-loop recursion over the last ``history`` pairs
    ``s = w_{k+1} - w_k``, ``y = g_{k+1} - g_k``, with the usual initial matrix
    ``H0 = (s.y / y.y) I`` of the newest pair; the first step (no pair yet) goes along
    ``-g / ||g||``, so that its unit trial step has length 1. The step length comes from
    SciPy's strong-Wolfe line search (:func:`scipy.optimize.line_search`, the zoom of
    Nocedal and Wright, c1 = 1e-4, c2 = 0.9), first trial 1. A pair with ``s.y`` not
    safely positive (:data:`CURVATURE_EPS`) is skipped; a direction that is not one of
    descent (rounding) clears the history and restarts along ``-g``.

    Parameters
    ----------
    w0 : array_like
        Starting point (copied).
    history : int
        Curvature pairs kept (``M``, default 10 as in SciPy and Spark).
    """

    name = "lbfgs"
    uses_lr = False
    # the line search compares values and the update differences gradients: approximate
    # ones break both
    needs_exact = True

    def __init__(self, w0, history=10):
        history = int(history)
        if history < 1:
            raise UsageError(f"--history must be at least 1, got {history}")
        self.history = history
        self.w = np.array(w0, dtype=np.float64)
        d = self.w.size
        self.f, self.g = None, None  # objective and gradient at w, once evaluated
        self.S, self.Y = np.zeros((0, d)), np.zeros((0, d))
        self.iteration = 0
        self.last = StepRecord()

    def direction(self):
        """``-H g`` (two-loop recursion with the initial scaling of the newest pair)."""
        q = self.g.copy()
        k = len(self.S)
        if k == 0:
            return -q / np.linalg.norm(q)
        rho = 1.0 / np.einsum("ij,ij->i", self.Y, self.S)
        alpha = np.empty(k)
        for i in range(k - 1, -1, -1):
            alpha[i] = rho[i] * (self.S[i] @ q)
            q -= alpha[i] * self.Y[i]
        q *= (self.S[-1] @ self.Y[-1]) / (self.Y[-1] @ self.Y[-1])
        for i in range(k):
            beta = rho[i] * (self.Y[i] @ q)
            q += (alpha[i] - beta) * self.S[i]
        return -q

    def step(self, evaluate, converged=None):
        """One step: the line search along :meth:`direction` (the first step begins with
        the evaluation at ``w0``). Returns :data:`CONVERGED`, :data:`LINE_SEARCH_FAILED`
        or None; ``w``, ``f`` and ``g`` are the accepted point's.
        """
        points = []  # (x, f, g) of every evaluation of this step, in order

        def f_and_g(x):
            x = np.array(x, dtype=np.float64)
            f, g = evaluate(x)
            points.append((x, float(f), np.array(g, dtype=np.float64)))
            return points[-1][1:]

        self.last = StepRecord()
        if self.g is None:
            self.f, self.g = f_and_g(self.w)
            self.last = StepRecord(line_search=[False], accepted=0)
            if converged is not None and converged(self.g):
                return CONVERGED
        if not np.any(self.g):
            return CONVERGED  # a stationary point: no direction to search
        p = self.direction()
        if not self.g @ p < 0.0:
            self.S, self.Y = self.S[:0], self.Y[:0]
            p = self.direction()
        ls = self.last.line_search

        def fun(x):
            return f_and_g(x)[0]

        def grad(x):
            # SciPy asks for the gradient right after the value at the same point: reuse
            # that evaluation rather than run a second distributed one
            last = points[-1] if points else None
            if last is not None and last[0].tobytes() == np.asarray(x, np.float64).tobytes():
                return last[2]
            return f_and_g(x)[1]

        from scipy.optimize import line_search  # 0.9 s of imports: only lbfgs needs it

        before = len(points)
        with warnings.catch_warnings():
            # a failed search warns (SciPy's LineSearchWarning, a RuntimeWarning, is not
            # public); the failure is reported as the stop reason instead
            warnings.simplefilter("ignore", RuntimeWarning)
            alpha, *_, f_new, _, g_new = line_search(
                fun, grad, self.w, p, gfk=self.g, old_fval=self.f, c1=WOLFE_C1, c2=WOLFE_C2,
                maxiter=LINE_SEARCH_MAX_TRIALS)
        ls.extend([True] * (len(points) - before))
        if alpha is None or g_new is None:
            return LINE_SEARCH_FAILED
        w_new = self.w + alpha * p
        key = w_new.tobytes()
        self.last.accepted = next((i for i in range(len(points) - 1, -1, -1)
                                   if points[i][0].tobytes() == key), None)
        g_new = np.array(g_new, dtype=np.float64)
        s, y = w_new - self.w, g_new - self.g
        if s @ y > CURVATURE_EPS * (y @ y):
            self.S = np.vstack([self.S, s])[-self.history:]
            self.Y = np.vstack([self.Y, y])[-self.history:]
        self.w, self.f, self.g = w_new, float(f_new), g_new
        self.iteration += 1
        if converged is not None and converged(self.g):
            return CONVERGED
        return None

    def state_dict(self):
        """The iterate, its value and gradient, and the curvature pairs (plain arrays)."""
        evaluated = self.g is not None
        return {"name": self.name, "iteration": self.iteration, "history": self.history,
                "w": self.w.copy(), "evaluated": evaluated,
                "f": self.f if evaluated else np.nan,
                "g": self.g.copy() if evaluated else np.zeros_like(self.w),
                "S": self.S.copy(), "Y": self.Y.copy()}

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` (same dimension; the history length may differ
        only if the saved pairs fit).
        """
        self._check_state(state, ("iteration", "history", "w", "evaluated", "f", "g",
                                  "S", "Y"))
        d = self.w.size
        S = np.array(state["S"], dtype=np.float64).reshape(-1, d)
        Y = np.array(state["Y"], dtype=np.float64).reshape(-1, d)
        if len(S) != len(Y) or len(S) > self.history:
            raise UsageError(f"checkpoint holds {len(S)} curvature pairs, this run keeps "
                             f"at most {self.history}")
        self.iteration = int(state["iteration"])
        self.w = np.array(state["w"], dtype=np.float64)
        self.S, self.Y = S, Y
        if bool(state["evaluated"]):
            self.f, self.g = float(state["f"]), np.array(state["g"], dtype=np.float64)
        else:
            self.f, self.g = None, None


OPTIMIZER_CLASSES = {cls.name: cls for cls in (GD, Nesterov, LBFGS)}
OPTIMIZERS = tuple(OPTIMIZER_CLASSES)


def optimizer_class(name):
    """The class of the optimizer ``name`` (UsageError for an unknown one)."""
    if name not in OPTIMIZER_CLASSES:
        raise UsageError(f"unknown optimizer '{name}' (expected one of: "
                         f"{', '.join(OPTIMIZERS)})")
    return OPTIMIZER_CLASSES[name]


def make_optimizer(name, lr, w0, mu=0.0, history=10):
    """An optimizer by name: ``gd`` and ``nesterov`` take ``lr`` (``mu`` only matters for
    Nesterov), ``lbfgs`` ignores it and keeps ``history`` curvature pairs.
    """
    cls = optimizer_class(name)
    if cls is LBFGS:
        return LBFGS(w0, history=history)
    return Nesterov(lr, w0, mu=mu) if cls is Nesterov else GD(lr, w0)
