"""The batch scripts under a real (private, single-node) Slurm: ``make test-slurm``.

Every job is submitted the way the README says (variables exported, ``--export=ALL``),
launched by ``srun --mpi=pmi2`` with the mpich wheel, and judged by its final state in
``sacct --completion`` and by its outputs.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from mpiutil import REPO, read_run

DATA = "synthetic:n=3000,d=20,seed=1"
pytestmark = pytest.mark.timeout(400)


@pytest.fixture
def submit(slurm, tmp_path):
    """submit(script, *sbatch options, **environment) -> job id, from tmp_path."""
    def _submit(script, *options, **env):
        full_env = {"MPIGC_HOME": str(REPO), "MPIGC_VENV": "none",
                    "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                    "MPIGC_CACHE": str(REPO / ".numba_cache"), **env}
        return slurm.submit(["--export=ALL", *options, REPO / "jobs" / script],
                            env=full_env, cwd=tmp_path)
    return _submit


def _log(tmp_path, job):
    return (tmp_path / f"slurm-{job}.out").read_text()


def _lines(path):
    try:
        return path.read_text().count("\n")
    except OSError:
        return 0


def _wait_for(what, check, slurm, timeout=120):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} after {timeout} s\n" + slurm.logs()
        time.sleep(0.2)


def test_namespace_has_only_loopback(slurm):
    assert slurm.interfaces() == ["lo"]


def test_train_job_completes_with_commas_in_its_arguments(slurm, submit, tmp_path):
    stragglers = "bimodal:p=0.25,slowdown=8"
    job = submit("train.sbatch", "--ntasks=5",
                 MPIGC_ARGS=f"--iterations 4 --data {DATA} --stragglers {stragglers}")
    assert slurm.wait(job, 180) == ("COMPLETED", "0:0"), _log(tmp_path, job)
    log = _log(tmp_path, job)
    assert "launcher=srun threads/rank=1" in log
    summary, records = read_run(tmp_path / f"runs/train-{job}")
    assert summary["n_workers"] == 4 and len(records) == 4
    assert summary["config"]["stragglers"] == stragglers and summary["config"]["data"] == DATA
    assert (tmp_path / f"runs/train-{job}/model.npz").exists()


def test_time_limit_signal_checkpoints_and_resume_finishes(slurm, submit, tmp_path):
    """--time=3, SIGUSR1 80 s before (Slurm may send it up to 60 s early, never before the
    ranks have their handlers): the step checkpoints and the job COMPLETEs."""
    args = f"--data {DATA} --chunk-time 0.01 --stragglers none"
    job = submit("train.sbatch", "--ntasks=4", "--time=3", "--signal=USR1@80",
                 MPIGC_ARGS=f"{args} --iterations 100000")
    out = tmp_path / f"runs/train-{job}"
    # iterations.jsonl can be followed while the job runs (whole lines only)
    _wait_for("iteration record", lambda: _lines(out / "iterations.jsonl") >= 2
              or slurm.job_state(job) not in ("PENDING", "RUNNING"), slurm)
    assert slurm.wait(job, 240) == ("COMPLETED", "0:0"), _log(tmp_path, job)
    assert not (out / "summary.json").exists()
    done = _lines(out / "iterations.jsonl")
    assert f"checkpoint at iteration {done} written to runs/train-{job}" in _log(tmp_path, job)

    total = done + 3
    again = submit("train.sbatch", "--ntasks=4",
                   MPIGC_ARGS=f"{args} --iterations {total} --resume runs/train-{job}",
                   MPIGC_OUT=f"runs/train-{job}")
    assert slurm.wait(again, 180) == ("COMPLETED", "0:0"), _log(tmp_path, again)
    summary, records = read_run(out)
    assert summary["iterations"] == total and summary["run_starts"] == [0, done]
    assert [r["iteration"] for r in records] == list(range(total))


@pytest.mark.parametrize("rank", [2, 0], ids=["worker", "ps"])
def test_killed_rank_ends_the_step_and_the_relaunch_finishes(rank, slurm, submit, tmp_path):
    """MPICH cannot survive a dead rank: SIGKILL one, the script resumes the checkpoint.

    A dead worker: srun terminates the others MPIGC_STEP_WAIT seconds later, and rank 0
    may checkpoint on that SIGTERM
    at the next iteration boundary. A dead PS: only the periodic checkpoint is there.
    """
    total, every = 300, 20
    job = submit("train.sbatch", "--ntasks=4", MPIGC_RETRIES="1", MPIGC_STEP_WAIT="5",
                 MPIGC_ARGS=f"--data {DATA} --chunk-time 0.02 --iterations {total} "
                            f"--checkpoint-every {every}")
    out = tmp_path / f"runs/train-{job}"
    victim = slurm.task_pid(job, rank=rank)
    _wait_for("checkpoint", lambda: (out / "checkpoint.npz").exists()
              and _lines(out / "iterations.jsonl") > every, slurm)
    os.kill(victim, signal.SIGKILL)
    assert slurm.wait(job, 240) == ("COMPLETED", "0:0"), _log(tmp_path, job)
    log = _log(tmp_path, job)
    assert f"task {rank}: Killed" in log and "relaunch 1 of 1 from" in log, log
    summary, records = read_run(out)
    starts = summary["run_starts"]
    assert len(starts) == 2 and every <= starts[1] < total, starts
    if rank == 0:
        assert starts[1] % every == 0, starts
    assert summary["iterations"] == total and (out / "model.npz").exists()
    assert [r["iteration"] for r in records] == list(range(total))


def test_bad_input_fails_the_job_with_its_reason_and_no_relaunch(slurm, submit, tmp_path):
    job = submit("train.sbatch", "--ntasks=3", MPIGC_ARGS="--iterations 2 --scheme nope")
    state, code = slurm.wait(job, 120)
    log = _log(tmp_path, job)
    assert (state, code) == ("FAILED", "2:0"), log
    assert log.count("mpigc: error: argument --scheme: invalid choice: 'nope'") == 1, log
    assert "not relaunched" in log


def test_scaling_job_writes_csv_and_figure(slurm, submit, tmp_path):
    out = tmp_path / "scaling"
    job = submit("scaling.sbatch", "--ntasks=3", MPIGC_RANKS="2 3", MPIGC_ITERATIONS="3",
                 MPIGC_DATA=DATA, MPIGC_OUT=str(out))
    assert slurm.wait(job, 240) == ("COMPLETED", "0:0"), _log(tmp_path, job)
    runs = json.loads((out / "scaling.json").read_text())["runs"]
    assert {(r["scheme"], r["ranks"]) for r in runs} == {
        ("psgc", 2), ("psgc", 3), ("allreduce", 2), ("allreduce", 3)}
    assert (out / "scaling.csv").exists() and (out / "scaling.png").stat().st_size > 0
