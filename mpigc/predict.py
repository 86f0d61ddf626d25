"""``mpigc predict MODEL DATA [--out FILE] [--proba]``: apply a saved model to a data set.

One process, no MPI. ``MODEL`` is a ``model.npz`` of ``mpigc train --out DIR``
(:func:`mpigc.load_model`), ``DATA`` any ``--data`` spec of ``train`` (compressed
svmlight too: this one process reads every row anyway). An svmlight file without
``features=`` takes the model's feature count when its largest index is below it (its
last features are simply never set there).

Prints one line: the rows, and the held-out metrics of :func:`mpigc.metrics.compute` on
the data's labels. ``--out FILE`` (``.npy``, or ``.csv`` with one value per line, exact
to the last bit) receives the predictions: class labels in the model's ``classes_``
(logistic), or the values (linear); with ``--proba`` the probability of the positive
class, ``classes_[1]`` (logistic only). FILE appears whole or not at all, and only once
every row has been read and checked.
"""

import os
import sys

import numpy as np
from scipy.special import expit

from mpigc import metrics
from mpigc.data import parse_data_spec, prepare_labels
from mpigc.data.checks import check_output_file
from mpigc.errors import UsageError
from mpigc.estimator import load_model
from mpigc.runtime.log import atomic_write

WRITERS = {".npy": lambda f, a: np.save(f, a),
           ".csv": lambda f, a: np.savetxt(f, a, fmt="%.17g")}   # 17 digits: float64 exactly
# Rows read at a time: their dense values stay within this many bytes.
BLOCK_BYTES = 64 << 20


def _check_out(out):
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in WRITERS:
        raise UsageError(f"--out must end in {' or '.join(WRITERS)}, got '{out}'")
    check_output_file(out)
    return WRITERS[suffix]


def _match_features(source, model, model_path):
    d = model.n_features_in_
    parts = getattr(source, "parts", [source])
    if source.n_features < d and all(getattr(p, "features_inferred", False) for p in parts):
        # svmlight without features=: its largest index is only a lower bound of the count
        for s in (source, *parts):
            s.n_features = d
    if source.n_features != d:
        raise UsageError(f"the model {model_path} has {d} features, the data "
                         f"{source.name} has {source.n_features}")


def predict(model_path, data, out=None, proba=False):
    """Apply the model file ``model_path`` to the data set ``data`` (a ``--data`` spec).

    Parameters
    ----------
    model_path : str or os.PathLike
    data : str
    out : str, optional
        ``.npy`` or ``.csv`` file for the predictions.
    proba : bool
        Write probabilities of the positive class (logistic models only).

    Returns
    -------
    n_rows : int
    scores : dict
        :func:`mpigc.metrics.compute` of the predictions on the data's labels.

    Raises
    ------
    UsageError
        A bad output name, a file that is not a model, bad data (as ``train`` reports it),
        data whose feature count or labels do not fit the model. Nothing is written then.
    """
    write = _check_out(os.fspath(out)) if out is not None else None
    model = load_model(model_path)
    if proba and model.model != "logistic":
        raise UsageError(f"--proba gives class probabilities of a logistic model; "
                         f"{model_path} is a {model.model} model")
    source = parse_data_spec(data, model=model.model, compressed=True)
    _match_features(source, model, model_path)
    step = max(1, BLOCK_BYTES // (8 * model.n_features_in_))
    zs, ys = [], []
    for start in range(0, source.n_rows, step):
        X, y = source.read_rows([(start, min(start + step, source.n_rows))])
        zs.append(model.decision_function(X))
        ys.append(y)
    z, y = np.concatenate(zs), np.concatenate(ys)
    try:
        y = prepare_labels(y, model.model)
    except UsageError as exc:
        raise UsageError(f"{source.name}: {exc}") from None
    scores = metrics.compute(model.model, z, y)
    if write is not None:
        values = expit(z) if proba else model.predict_from_decision(z)
        try:
            atomic_write(out, lambda f: write(f, values))
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    return source.n_rows, scores


def main(args):
    """Entry point of ``mpigc predict``."""
    n_rows, scores = predict(args.model, args.data, out=args.out, proba=args.proba)
    shown = " ".join(f"{k}={v:.6g}" for k, v in scores.items())
    target = f" -> {args.out}" if args.out is not None else ""
    print(f"mpigc predict: {n_rows} rows of {args.data}: {shown}{target}", file=sys.stdout)
    return 0
