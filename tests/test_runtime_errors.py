"""Bad input to ``mpigc train`` is one line and exit status 2 on every rank; a crashing
rank aborts the job instead of hanging it."""

import numpy as np
import pytest

from mpiutil import MPI_SCRIPTS, assert_usage_error, run_cli, run_mpi


def test_single_rank_is_refused():
    assert_usage_error(run_mpi(1, ["mpigc", "train", "--iterations", 2], timeout=60),
                       "at least 2 MPI ranks")
    assert_usage_error(run_cli(["train", "--iterations", 2], timeout=60), "at least 2 MPI ranks")


def test_scheme_that_cannot_use_the_world_is_refused():
    # 2 workers cannot hold 3 chunks each
    assert_usage_error(run_mpi(3, ["mpigc", "train", "--load", 3], timeout=60), "--load")


def test_bad_row_found_by_one_worker_stops_every_rank(tmp_path):
    from mpigc.data import save_npz

    X = np.random.default_rng(1).standard_normal((90, 5))
    X[70, 3] = np.nan  # chunk 2 of 3: only the workers holding it read this row
    save_npz(tmp_path / "bad.npz", X, np.ones(90))
    res = run_mpi(4, ["mpigc", "train", "--data", tmp_path / "bad.npz", "--load", 1,
                      "--out", tmp_path / "out"], timeout=60)
    assert_usage_error(res, "bad.npz", "row 70", "feature 3")
    assert not (tmp_path / "out" / "summary.json").exists()


def test_labels_that_disagree_across_workers_are_refused(tmp_path):
    from mpigc.data import save_npz

    # each worker alone sees a valid label set ({0, 1} or {-1, 1}); together they are not
    y = np.r_[np.zeros(30), np.ones(30), -np.ones(30)]
    save_npz(tmp_path / "labels.npz", np.random.default_rng(2).standard_normal((90, 4)), y)
    res = run_mpi(4, ["mpigc", "train", "--data", tmp_path / "labels.npz", "--scheme",
                      "uncoded"], timeout=60)
    assert_usage_error(res, "labels.npz", "logistic")


def test_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    res = run_mpi(3, ["mpigc", "train", "--data", "synthetic:n=100,d=3", "--out",
                      tmp_path / "f"], timeout=60)
    assert_usage_error(res, "not a directory")


@pytest.mark.parametrize("option", [["--faults", "bogus"], ["--checkpoint-every", "5"]])
def test_bad_fault_and_checkpoint_options_are_refused(option):
    assert_usage_error(run_mpi(3, ["mpigc", "train", *option], timeout=60), option[0])


def test_crashing_worker_aborts_the_job(tmp_path):
    res = run_mpi(4, [MPI_SCRIPTS / "failing_worker.py", "train", "--data",
                      "synthetic:n=300,d=5", "--iterations", 20, "--out", tmp_path / "o",
                      "--quiet"], timeout=60)
    assert res.returncode != 0
    assert "deliberate failure of worker 1" in res.stderr
    assert not (tmp_path / "o" / "summary.json").exists()
