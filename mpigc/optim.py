"""First-order optimizers driven by the parameter server, one decoded gradient at a time.

Each iteration the runtime asks :meth:`point` where to evaluate the gradient, computes
it there (distributed), and hands it to :meth:`update`, which returns the new iterate.
The attribute ``w`` is the current iterate (what ``model.npz`` stores).

``state_dict()`` returns plain NumPy arrays and floats; ``load_state_dict`` restores them
exactly, so a resumed run repeats the uninterrupted trajectory bit for bit.
"""

import numpy as np

from mpigc.errors import UsageError

OPTIMIZERS = ("gd", "nesterov")


def _check_lr(lr):
    lr = float(lr)
    if not (np.isfinite(lr) and lr > 0.0):
        raise UsageError(f"learning rate must be a finite number > 0, got {lr}")
    return lr


def _fista_next(t):
    """FISTA's ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``."""
    return (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0


class GD:
    """Gradient descent: ``w <- w - lr * grad F(w)``.

    Parameters
    ----------
    lr : float
        Step size (``1/L`` is safe for an L-smooth objective).
    w0 : array_like
        Starting point (copied).
    """

    name = "gd"

    def __init__(self, lr, w0):
        self.lr = _check_lr(lr)
        self.w = np.array(w0, dtype=np.float64)
        self.iteration = 0

    def point(self):
        """Where to evaluate the gradient this iteration: the iterate itself."""
        return self.w

    def update(self, grad):
        """Take one step with the gradient evaluated at :meth:`point`; return the new ``w``."""
        self.w = self.w - self.lr * np.asarray(grad, dtype=np.float64)
        self.iteration += 1
        return self.w

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
        state = super().state_dict()
        state.update(mu=self.mu, t=self.t, y=self.y.copy())
        return state

    def load_state_dict(self, state):
        self._check_state(state, ("lr", "iteration", "w", "mu", "t", "y"))
        super().load_state_dict(state)
        self.mu, self.t = float(state["mu"]), float(state["t"])
        self.y = np.array(state["y"], dtype=np.float64)


def make_optimizer(name, lr, w0, mu=0.0):
    """``gd`` or ``nesterov`` by name (``mu`` only matters for Nesterov)."""
    if name == "gd":
        return GD(lr, w0)
    if name == "nesterov":
        return Nesterov(lr, w0, mu=mu)
    raise UsageError(f"unknown optimizer '{name}' (expected one of: {', '.join(OPTIMIZERS)})")
