"""Held-out metrics of a linear model, computable in pieces (no MPI here).

Each worker turns its rows into a fixed-length vector of sums (:func:`partial_sums`); the
vectors add up (``comm`` sum-reduce, or ``np.sum``) and :func:`from_sums` turns the total
into the metrics. ROC AUC is a rank statistic, not a sum: rank 0 gathers every score and
calls :func:`roc_auc`. :func:`compute` is the one-process composition.

Definitions follow scikit-learn (``sklearn.metrics``), which the tests check them against:

- logistic (labels +-1 as the training code holds them, decision values ``z``):
  ``log_loss`` (natural log, mean over rows, of ``P(y | z) = 1 / (1 + exp(-y z))``),
  ``accuracy`` (predicted class +1 where ``z > 0``, as ``LogisticRegression.predict``),
  ``roc_auc``;
- linear: ``rmse``, ``mae``, ``r2`` (``1 - SS_res / SS_tot``, as ``r2_score``).

A metric that is undefined is NaN (JSON null in the run's outputs): every metric of an
empty set of rows, ROC AUC when only one class is present, R^2 of constant targets.
"""

import numpy as np
from scipy.stats import rankdata

from mpigc.errors import UsageError
from mpigc.models import _check_model

# Entries of the partial-sum vector of each model (their order is the vector's layout).
SUMS = {"logistic": ("n", "log_loss", "correct"),
        "linear": ("n", "squared_error", "absolute_error", "y", "y_squared")}
METRICS = {"logistic": ("log_loss", "accuracy", "roc_auc"), "linear": ("rmse", "mae", "r2")}
# SS_tot = sum y^2 - (sum y)^2 / n cancels: below this multiple of eps * sum y^2 it is the
# rounding of the two sums, i.e. the targets are constant as far as the sums can tell.
_CONSTANT = 64.0


def _arrays(model, z, y):
    _check_model(model)
    z = np.asarray(z, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if z.shape != y.shape:
        raise UsageError(f"z and y must have the same length, got {z.size} and {y.size}")
    if model == "logistic" and not np.isin(y, (-1.0, 1.0)).all():
        raise UsageError("y of a logistic model must hold the labels -1 and +1 "
                         "(mpigc.data.prepare_labels converts 0/1 labels)")
    return z, y


def partial_sums(model: str, z, y) -> np.ndarray:
    """The sums over some rows from which :func:`from_sums` computes the metrics.

    Parameters
    ----------
    model : {"logistic", "linear"}
    z : array_like, (n,)
        Decision values ``x . coef + intercept`` of the rows.
    y : array_like, (n,)
        Labels: -1/+1 (logistic) or real targets (linear).

    Returns
    -------
    numpy.ndarray
        float64, fixed length per model (:data:`SUMS`): logistic ``[n, sum of log-losses,
        number correct]``, linear ``[n, sum (z - y)^2, sum |z - y|, sum y, sum y^2]``.
        The vectors of disjoint pieces of the rows add up to the vector of their union.

    Raises
    ------
    UsageError
        Unknown model, ``z`` and ``y`` of different lengths, logistic labels other than +-1.
    """
    z, y = _arrays(model, z, y)
    if model == "logistic":
        # -log P(y | z) = log(1 + exp(-y z)), finite for every finite margin
        return np.array([z.size, np.logaddexp(0.0, -y * z).sum(),
                         np.count_nonzero(np.where(z > 0.0, 1.0, -1.0) == y)], dtype=np.float64)
    r = z - y
    return np.array([z.size, r @ r, np.abs(r).sum(), y.sum(), y @ y], dtype=np.float64)


def from_sums(model: str, sums, auc=None) -> dict:
    """The metrics of the rows whose :func:`partial_sums` add up to ``sums``.

    Parameters
    ----------
    model : {"logistic", "linear"}
    sums : array_like
        The (summed) vector of :func:`partial_sums`.
    auc : float, optional
        ROC AUC from :func:`roc_auc` (logistic only; it is no sum). NaN when not given.

    Returns
    -------
    dict
        logistic ``{"log_loss", "accuracy", "roc_auc"}``, linear ``{"rmse", "mae", "r2"}``,
        floats; NaN where undefined (no rows; R^2 of constant targets: ``SS_tot = 0`` leaves
        nothing to explain, so no number is given rather than scikit-learn's substitutes
        1.0 / 0.0, which would read as a measurement).

    Notes
    -----
    ``SS_tot`` comes from ``sum y`` and ``sum y^2``; its relative rounding error is about
    ``eps * (1 + mean^2 / variance)`` of the targets (negligible unless the targets' mean
    is many orders of magnitude above their spread).
    """
    _check_model(model)
    sums = np.asarray(sums, dtype=np.float64)
    if sums.shape != (len(SUMS[model]),):
        raise UsageError(f"sums of a {model} model must have {len(SUMS[model])} entries, "
                         f"got shape {sums.shape}")
    n = sums[0]
    if n <= 0:
        return dict.fromkeys(METRICS[model], float("nan"))
    if model == "logistic":
        return {"log_loss": float(sums[1] / n), "accuracy": float(sums[2] / n),
                "roc_auc": float("nan") if auc is None else float(auc)}
    _, sse, sae, sy, syy = sums
    ss_tot = syy - sy * sy / n
    constant = ss_tot <= _CONSTANT * np.finfo(np.float64).eps * syy
    return {"rmse": float(np.sqrt(sse / n)), "mae": float(sae / n),
            "r2": float("nan") if constant else float(1.0 - sse / ss_tot)}


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for the positive labels.

    The Mann-Whitney U statistic of the positives' scores over the negatives', divided by
    ``n_pos * n_neg``; tied scores share their average rank (count one half), which is
    ``sklearn.metrics.roc_auc_score``'s value.

    Parameters
    ----------
    scores : array_like, (n,)
        Any increasing function of the positive class's probability (decision values).
    labels : array_like, (n,)
        Positive where ``label > 0`` (+1 of -1/+1, or 1 of 0/1).

    Returns
    -------
    float
        In [0, 1]; NaN when the labels hold only one class (or no rows): the AUC is not
        defined there (scikit-learn warns or raises), and a run reports it as missing.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(labels, dtype=np.float64).ravel() > 0.0
    if scores.shape != positive.shape:
        raise UsageError(f"scores and labels must have the same length, got {scores.size} "
                         f"and {positive.size}")
    n_pos = int(np.count_nonzero(positive))
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # ranks are multiples of 1/2, so their sum is exact in float64 below ~2^52 / n
    u = rankdata(scores)[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def compute(model: str, z, y) -> dict:
    """Every metric of one process's rows: :func:`from_sums` of :func:`partial_sums` (and
    :func:`roc_auc` for logistic). Arguments as :func:`partial_sums`.
    """
    z, y = _arrays(model, z, y)
    auc = roc_auc(z, y) if model == "logistic" else None
    return from_sums(model, partial_sums(model, z, y), auc=auc)
