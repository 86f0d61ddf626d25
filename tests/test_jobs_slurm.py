"""The Slurm batch scripts, run for real with stand-ins for sbatch and srun on PATH."""

import json
import os
import sys
from pathlib import Path

import pytest

from mpiutil import REPO, assert_usage_error, mpiexec, run, run_cli

STANDIN = Path(__file__).resolve().parent / "standin"


@pytest.fixture
def slurm_env(tmp_path):
    """Environment of a submit directory: stand-ins first on PATH, the venv's mpigc next."""
    bindir = Path(sys.executable).parent
    return {
        "PATH": f"{STANDIN}:{bindir}:{os.environ['PATH']}",
        "MPIGC_HOME": str(REPO),
        "MPIGC_VENV": "none",
        "MPIEXEC": mpiexec(),
        "MPIGC_CACHE": str(REPO / ".numba_cache"),
    }


def _log(tmp_path):
    logs = sorted(tmp_path.glob("slurm-*.out"))
    return "\n".join(p.read_text() for p in logs)


def test_train_job_runs_under_srun_and_writes_outputs(tmp_path, slurm_env):
    env = dict(slurm_env, MPIGC_ARGS="--scheme psgc --iterations 3 --data synthetic:n=2000,d=10")
    res = run(["sbatch", "--ntasks=4", "--cpus-per-task=1", REPO / "jobs/train.sbatch"],
              env=env, cwd=tmp_path, timeout=240)
    log = _log(tmp_path)
    assert res.returncode == 0, log
    assert "launcher=srun threads/rank=1" in log
    job = res.stdout.split()[-1]
    summary = json.loads((tmp_path / f"runs/train-{job}/summary.json").read_text())
    assert summary["n_workers"] == 3 and summary["iterations"] == 3
    assert (tmp_path / f"runs/train-{job}/model.npz").exists()


def test_threads_follow_cpus_per_task(tmp_path, slurm_env):
    script = tmp_path / "probe.sbatch"
    script.write_text(f'source "{REPO}/jobs/common.sh"\n'
                      'echo "threads=$NUMBA_NUM_THREADS,$OMP_NUM_THREADS,$OPENBLAS_NUM_THREADS"\n'
                      'echo "cache=$NUMBA_CACHE_DIR"\n')
    env = dict(slurm_env)
    env.pop("MPIGC_CACHE")
    res = run(["sbatch", "--cpus-per-task=4", script], env=env, cwd=tmp_path, timeout=120)
    log = _log(tmp_path)
    assert res.returncode == 0, log
    assert "threads=4,4,4" in log
    job = res.stdout.split()[-1]
    assert f"cache={tmp_path}/.mpigc-cache/job-{job}" in log  # job-local, warmed by mpigc warmup
    assert any((tmp_path / f".mpigc-cache/job-{job}").iterdir())


def test_scaling_job_loops_srun_steps_and_collects(tmp_path, slurm_env):
    env = dict(slurm_env, MPIGC_RANKS="2 3", MPIGC_ITERATIONS="3",
               MPIGC_DATA="synthetic:n=3000,d=20,seed=1", MPIGC_OUT=str(tmp_path / "sc"))
    res = run(["sbatch", "--ntasks=3", REPO / "jobs/scaling.sbatch"], env=env, cwd=tmp_path,
              timeout=240)
    assert res.returncode == 0, _log(tmp_path)
    out = json.loads((tmp_path / "sc/scaling.json").read_text())
    points = {(r["scheme"], r["ranks"]) for r in out["runs"]}
    assert points == {("psgc", 2), ("psgc", 3), ("allreduce", 2), ("allreduce", 3)}
    assert (tmp_path / "sc/scaling.csv").exists()


def test_sweep_array_covers_schemes_and_seeds(tmp_path, slurm_env):
    env = dict(slurm_env, MPIGC_SCHEMES="psgc uncoded",
               MPIGC_ARGS="--iterations 2 --data synthetic:n=2000,d=10",
               MPIGC_OUT=str(tmp_path / "sw"))
    res = run(["sbatch", "--array=0-3", "--ntasks=3", REPO / "jobs/sweep.sbatch"], env=env,
              cwd=tmp_path, timeout=240)
    assert res.returncode == 0, _log(tmp_path)
    made = sorted(p.name for p in (tmp_path / "sw").iterdir())
    assert made == ["psgc-seed-0", "psgc-seed-1", "uncoded-seed-0", "uncoded-seed-1"]


def test_pmi_mismatch_under_srun_is_refused(tmp_path, slurm_env):
    """srun without a matching PMI starts N size-1 worlds: every rank must stop, exit 2."""
    res = run([STANDIN / "srun", "--mpi=none", "--ntasks=3", sys.executable, "-m", "mpigc",
               "train", "--iterations", "1"], env=slurm_env, cwd=tmp_path, timeout=120)
    assert_usage_error(res, "srun started 3 tasks")


def test_bench_scaling_runs_each_rank_count(tmp_path):
    res = run_cli(["bench", "scaling", "--ranks", "2,3", "--iterations", "2", "--json",
                   "--data", "synthetic:n=2000,d=10", "--out", tmp_path], timeout=240)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    rows = {(r["scheme"], r["ranks"]): r for r in out["runs"]}
    assert set(rows) == {("psgc", 2), ("psgc", 3), ("allreduce", 2), ("allreduce", 3)}
    assert rows[("psgc", 2)]["speedup"] == 1.0
    assert rows[("psgc", 3)]["oversubscribed"] is (3 > out["cores"])
    assert (tmp_path / "scaling.csv").exists() and (tmp_path / "scaling.png").exists()


def test_bad_retries_value_is_refused(tmp_path, slurm_env):
    env = dict(slurm_env, MPIGC_RETRIES="two")
    res = run(["sbatch", "--ntasks=3", REPO / "jobs/train.sbatch"], env=env, cwd=tmp_path,
              timeout=120)
    assert res.returncode == 2
    assert "mpigc: error: MPIGC_RETRIES must be a whole number >= 0, got 'two'" in _log(tmp_path)
