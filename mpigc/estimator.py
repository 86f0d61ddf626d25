"""A trained model in scikit-learn's conventions: :func:`load_model` and :class:`LinearModel`.

The model file (``model.npz`` of ``mpigc train --out DIR``) holds the arrays ``coef``
(float64, length d), ``intercept`` (a float64 scalar, 0.0 without ``--fit-intercept``),
``model`` ("logistic" or "linear") and ``n_features``, and the run's settings as scalars
(``scheme``, ``iterations``, ``lr``, ``l2``, ``optimizer``). Files of older versions name
the coefficients ``w`` and have no intercept (read as 0). A file may record ``classes``
(the two labels of the training data, e.g. ``[0, 1]``); without it a logistic model's
classes are -1 and +1, the labels it was trained on.
"""

import os
import zipfile

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from mpigc.data import prepare_labels
from mpigc.errors import UsageError
from mpigc.models import MODELS

# scalars of the file kept as metadata_ (the run's settings)
SETTINGS = ("scheme", "iterations", "lr", "l2", "optimizer")


class LinearModel:
    """A linear model ``z = X @ coef_ + intercept_``: logistic (two classes) or linear
    regression, as :func:`mpigc.train` and ``mpigc train`` fit it.

    Parameters
    ----------
    coef : array_like, (n_features,)
    intercept : float
    model : {"logistic", "linear"}
    classes : array_like of two labels, optional
        Logistic only: the labels that ``predict`` returns for ``z <= 0`` and ``z > 0``
        (default ``[-1, 1]``).
    metadata : dict, optional
        The training run's settings, kept as ``metadata_``.

    Attributes
    ----------
    coef_ : numpy.ndarray, (n_features,)
    intercept_ : float
    n_features_in_ : int
    model : str
    classes_ : numpy.ndarray, (2,)
        Logistic only (a linear model has no such attribute), sorted: ``predict_proba``'s
        columns are in this order.
    metadata_ : dict
    """

    def __init__(self, coef, intercept=0.0, model="logistic", classes=None, metadata=None):
        if model not in MODELS:
            raise UsageError(f"unknown model '{model}' (expected one of: {', '.join(MODELS)})")
        coef = np.array(coef, dtype=np.float64)
        if coef.ndim != 1:
            raise UsageError(f"coef must be a 1-D array, got shape {coef.shape}")
        if not np.isfinite(coef).all():
            raise UsageError("coef holds NaN or infinity")
        intercept = np.asarray(intercept, dtype=np.float64)
        if intercept.shape != () or not np.isfinite(intercept):
            raise UsageError(f"intercept must be a finite scalar, got {intercept!r}")
        self.coef_, self.intercept_, self.model = coef, float(intercept), str(model)
        self.n_features_in_ = coef.size
        self.metadata_ = dict(metadata or {})
        if model == "logistic":
            classes = np.array([-1.0, 1.0] if classes is None else classes, dtype=np.float64)
            if classes.shape != (2,) or not classes[0] < classes[1]:
                raise UsageError(f"classes must be two increasing labels, got {classes!r}")
            self.classes_ = classes
        elif classes is not None:
            raise UsageError("classes applies to a logistic model, not linear")

    def __repr__(self):
        return f"LinearModel(model={self.model!r}, n_features={self.n_features_in_})"

    def _check_X(self, X):
        if sp.issparse(X):
            X = sp.csr_matrix(X, dtype=np.float64)
            values = X.data
        else:
            X = np.asarray(X, dtype=np.float64)
            values = X
        if X.ndim != 2:
            raise UsageError(f"X must be a 2-D array (n_samples, n_features), got {X.ndim}-D; "
                             f"reshape a single sample with X.reshape(1, -1)")
        if X.shape[1] != self.n_features_in_:
            raise UsageError(f"X has {X.shape[1]} features, but the model expects "
                             f"n_features={self.n_features_in_}")
        if not np.isfinite(values).all():
            raise UsageError("X holds NaN or infinity")
        return X

    def decision_function(self, X):
        """``X @ coef_ + intercept_``: the margin (logistic) or the prediction (linear).

        Parameters
        ----------
        X : array_like or scipy.sparse matrix, (n_samples, n_features)

        Returns
        -------
        numpy.ndarray, (n_samples,)
        """
        return np.asarray(self._check_X(X) @ self.coef_, dtype=np.float64) + self.intercept_

    def predict(self, X):
        """Class labels (``classes_[1]`` where the margin is > 0, as scikit-learn) or
        regression predictions.
        """
        return self.predict_from_decision(self.decision_function(X))

    def predict_from_decision(self, z):
        """:meth:`predict` from decision values ``z`` already computed (the class of each
        margin, or ``z`` itself for a linear model).
        """
        z = np.asarray(z, dtype=np.float64)
        if self.model == "logistic":
            return self.classes_[(z > 0.0).astype(np.intp)]
        return z

    @property
    def predict_proba(self):
        """Logistic only: probabilities of ``classes_``, shape ``(n_samples, 2)``.

        A linear model has no ``predict_proba`` (AttributeError, as for scikit-learn's
        regressors, so ``hasattr`` tells the two apart).
        """
        if self.model != "logistic":
            raise AttributeError(f"predict_proba is available for logistic models; this "
                                 f"model is {self.model}")
        return self._predict_proba

    def _predict_proba(self, X):
        z = self.decision_function(X)
        return np.column_stack([expit(-z), expit(z)])   # 1 - expit(z) would lose digits

    def score(self, X, y):
        """Accuracy (logistic) or R^2 (linear) on ``(X, y)``, scikit-learn's ``score``.

        Logistic labels may be 0/1 or -1/+1 whatever ``classes_`` holds: they are
        compared by class (``mpigc.data.prepare_labels``), not by value.
        """
        from mpigc import metrics

        z = self.decision_function(X)
        y = np.asarray(y, dtype=np.float64).ravel()
        if y.shape != z.shape:
            raise UsageError(f"y has {y.size} labels for {z.size} rows of X")
        if self.model == "logistic":
            if not np.isin(y, self.classes_).all():
                y = prepare_labels(y, "logistic")
            else:
                y = np.where(y == self.classes_[1], 1.0, -1.0)
            return metrics.compute("logistic", z, y)["accuracy"]
        return metrics.compute("linear", z, prepare_labels(y, "linear"))["r2"]


def load_model(path) -> LinearModel:
    """Read a model file written by ``mpigc train --out DIR`` (``DIR/model.npz``).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    LinearModel

    Raises
    ------
    UsageError
        The file is missing, unreadable, or not an mpigc model (the message names it).
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise UsageError(f"model file not found: {name}")
    if os.path.isdir(name):
        raise UsageError(f"model file is a directory: {name}")
    not_model = f"{name} is not an mpigc model file"
    try:
        npz = np.load(name, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise UsageError(f"{not_model} (a .npy array, not an .npz archive)")
        with npz:
            arrays = {key: npz[key] for key in npz.files}
    except UsageError:
        raise
    except OSError as exc:
        if exc.errno is None:   # not an I/O failure: bytes that are no archive
            raise UsageError(f"{not_model} (not an .npz archive)") from None
        raise UsageError(f"cannot read model file {name}: {exc.strerror}") from None
    except (ValueError, EOFError, zipfile.BadZipFile):
        raise UsageError(f"{not_model} (not an .npz archive)") from None
    coef = arrays.get("coef", arrays.get("w"))
    if coef is None or "model" not in arrays:
        raise UsageError(f"{not_model} (no 'coef' or 'w' array, or no 'model')")
    model = str(arrays["model"])
    try:
        if "n_features" in arrays and int(arrays["n_features"]) != np.size(coef):
            raise UsageError(f"n_features={int(arrays['n_features'])} but {np.size(coef)} "
                             f"coefficients")
        return LinearModel(coef, arrays.get("intercept", 0.0), model,
                           classes=arrays.get("classes") if model == "logistic" else None,
                           metadata={k: arrays[k].item() for k in SETTINGS if k in arrays
                                     and arrays[k].shape == ()})
    except (UsageError, TypeError, ValueError) as exc:
        raise UsageError(f"{not_model}: {exc}") from None
