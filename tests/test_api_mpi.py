"""``mpigc.train`` from a user's script under mpiexec: the model of the command line with
the same options, on every rank; errors that name the parameter as Python knows it."""

import json
from pathlib import Path

import numpy as np

from mpiutil import MPI_SCRIPTS, assert_ok, run_mpi, tails

OPTIONS = {"data": "synthetic:n=3000,d=12,seed=3", "scheme": "allreduce",
           "optimizer": "lbfgs", "iterations": 12, "fit_intercept": True,
           "standardize": True, "validation_fraction": 0.2, "l2": 1e-3, "quiet": True}


def _flags(options):
    argv = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def test_script_with_nine_ranks_gives_the_cli_model_bit_for_bit(tmp_path):
    """allreduce sums in a fixed order, so both runs are bitwise reproducible; the
    parameter-server schemes decode vectors in their order of arrival (last bits vary
    between any two runs, the command line's too)."""
    api = tmp_path / "api.npy"
    assert_ok(run_mpi(9, [MPI_SCRIPTS / "api_train.py", json.dumps(OPTIONS), api],
                      timeout=240))
    assert_ok(run_mpi(9, ["mpigc", "train", *_flags(OPTIONS), "--out", tmp_path / "cli"],
                      timeout=240))
    with np.load(tmp_path / "cli" / "model.npz") as z:
        cli = np.append(z["coef"], z["intercept"])
    assert np.load(api).tobytes() == cli.tobytes()


def test_any_intracommunicator(tmp_path):
    """comm= a split of the world: the ranks outside it are free meanwhile."""
    options = dict(OPTIONS, scheme="psgc", iterations=5)
    assert_ok(run_mpi(4, [MPI_SCRIPTS / "api_train.py", json.dumps(options),
                          tmp_path / "m.npy", "split"], timeout=180))
    assert np.load(tmp_path / "m.npy").shape == (13,)


CALLS = [
    ("ell=0", "UsageError", "ell (--ell) must be"),
    ("iterations='5'", "UsageError", "iterations (--iterations) must be an integer, got '5'"),
    ("model='svm'", "UsageError", "model (--model) must be one of logistic, linear"),
    ("validation_fraction=1.0", "UsageError", "validation_fraction (--validation-fraction) "
                                              "must be a number in [0, 1), got 1.0"),
    ("fit_intercept='yes'", "UsageError", "fit_intercept (--fit-intercept) is a flag"),
    ("learning_rate=0.1", "TypeError", "unexpected keyword argument 'learning_rate'"),
    ("data=([[1.0]], [0, 1])", "UsageError", "data: X must be a 2-D array"),
]


def test_errors_name_the_python_parameter(tmp_path):
    """Each bad call raises on every rank (mpiexec -n 2: ell is checked against the world);
    each rank writes what it caught to its own file (no interleaved output)."""
    script = tmp_path / "user.py"
    script.write_text(
        "import os\nimport mpigc\nrank = os.environ.get('PMI_RANK', "
        "os.environ.get('OMPI_COMM_WORLD_RANK'))\n"
        f"out = open(os.path.join({str(tmp_path)!r}, 'caught.' + rank), 'w')\n" + "".join(
            f"try:\n    mpigc.train({call})\nexcept Exception as exc:\n"
            f"    print(type(exc).__name__, '|', exc, file=out)\n" for call, _, _ in CALLS))
    res = run_mpi(2, [script], timeout=90)
    assert res.returncode == 0, tails(res)
    caught = [(tmp_path / f"caught.{r}").read_text().splitlines() for r in (0, 1)]
    assert caught[0] == caught[1] and len(caught[0]) == len(CALLS), caught
    for (call, error, message), line in zip(CALLS, caught[0]):
        kind, _, text = line.partition(" | ")
        assert kind == error and message in text, (call, line)


def test_the_readme_example_runs(tmp_path):
    script = Path(__file__).resolve().parents[1] / "docs" / "examples" / "train_from_python.py"
    res = assert_ok(run_mpi(3, [script, tmp_path / "run"], timeout=240))
    assert "held-out accuracy" in res.stdout and (tmp_path / "run" / "model.npz").exists()
    held = json.loads((tmp_path / "run" / "summary.json").read_text())["holdout"]
    assert held["accuracy"] > 0.7 and held["roc_auc"] > 0.8
