"""Checkpoint and resume of ``mpigc train`` (mpigc/runtime/checkpoint.py).

Bit-for-bit resumption needs a run whose trajectory is itself deterministic. psgc's
decoded gradient is exact only up to rounding, and the rounding depends on which state
fired, which depends on the order in which progress reports arrive: two uninterrupted
psgc runs with random (bimodal) stragglers differ in the last bits (measured: up to
6e-16 relative). A trace where in every iteration two workers run at speeds 1 and 2.5 and
the other two are 1000x slower makes the report order, hence every fired state (partial
ones included), the same in every run; there the resumed model must equal the
uninterrupted one exactly. With random stragglers the test asks for rtol 1e-12.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mpigc.errors import UsageError
from mpigc.optim import make_optimizer
from mpigc.runtime import checkpoint, launch
from mpigc.runtime.checkpoint import Checkpoint
from mpiutil import (
    REPO,
    assert_ok,
    assert_usage_error,
    mpi_command,
    rank_pid,
    read_run,
    run_mpi,
    start,
)

DATA = "synthetic:n=2000,d=10"
WORKERS = 4
ITERATIONS = 12
STOP_AT = 5


def _trace(path):
    rng = np.random.default_rng(5)
    np.savetxt(path, [rng.permutation([1.0, 2.5, 1000.0, 1000.0]) for _ in range(ITERATIONS)])
    return f"trace:{path}"


def _args(out, *extra, iterations=ITERATIONS):
    return ["mpigc", "train", "--data", DATA, "--iterations", iterations, "--quiet",
            "--out", out, *extra]


def _mpi(args, env=None, timeout=90):
    return run_mpi(WORKERS + 1, args, timeout=timeout, env=env)


def _w(out):
    return np.load(os.path.join(out, "model.npz"))["coef"]


# -- unit tests ----------------------------------------------------------------------------
def _state(t=3, d=4):
    opt = make_optimizer("nesterov", 0.1, np.zeros(d), mu=0.01)
    rng = np.random.default_rng(0)
    for _ in range(t):
        opt.update(rng.standard_normal(d))
    return Checkpoint(iteration=t, lr=0.1, optimizer=opt.state_dict(),
                      fingerprint={"ell": 1, "seed": 3, "lr": None, "world_size": 5},
                      durations=[0.1] * t, grad_rel_err=[], stale=2,
                      triggers={"exact": t}, elapsed_s=1.5, starts=[0],
                      scale=2.0 ** np.arange(d)), opt


def test_save_load_round_trip_continues_the_optimizer_exactly(tmp_path):
    ck, opt = _state()
    checkpoint.save(tmp_path, ck)
    got = checkpoint.load(tmp_path)
    assert (got.iteration, got.lr, got.stale, got.triggers, got.starts) == (3, 0.1, 2,
                                                                             {"exact": 3}, [0])
    assert got.durations == [0.1] * 3 and got.fingerprint == ck.fingerprint
    resumed = make_optimizer("nesterov", 0.5, np.zeros(4), mu=0.01)
    resumed.load_state_dict(got.optimizer)
    g = np.random.default_rng(1).standard_normal((5, 4))
    for row in g:
        assert np.array_equal(opt.point(), resumed.point())
        opt.update(row)
        resumed.update(row)
    assert np.array_equal(opt.w, resumed.w)
    np.testing.assert_array_equal(got.scale, [1, 2, 4, 8])
    with np.load(checkpoint.path(tmp_path)) as z:  # the straggler RNG position
        assert int(z["rng_position"]) == 3
        # the model in the user's coordinates: the optimizer's divided by the scale
        np.testing.assert_array_equal(z["w"], ck.optimizer["w"] / got.scale)


def test_fingerprint_mismatch_names_the_option(tmp_path):
    saved = {"ell": 2, "seed": 3, "lr": None, "world_size": 5}
    checkpoint.check_fingerprint(saved, dict(saved), tmp_path)
    with pytest.raises(UsageError, match=r"written with --ell 2, this run has --ell 1"):
        checkpoint.check_fingerprint(saved, {**saved, "ell": 1}, tmp_path)
    with pytest.raises(UsageError, match=r"--lr auto, this run has --lr 0.5"):
        checkpoint.check_fingerprint(saved, {**saved, "lr": 0.5}, tmp_path)
    with pytest.raises(UsageError, match=r"with 5 MPI ranks, this run has 4 MPI ranks"):
        checkpoint.check_fingerprint(saved, {**saved, "world_size": 4}, tmp_path)


def test_missing_or_damaged_checkpoint_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no checkpoint"):
        checkpoint.load(tmp_path)
    ck, _ = _state()
    checkpoint.save(tmp_path, ck)
    data = open(checkpoint.path(tmp_path), "rb").read()
    for damaged in (b"not a zip file", data[: len(data) // 2]):
        open(checkpoint.path(tmp_path), "wb").write(damaged)
        with pytest.raises(UsageError, match="is not a valid checkpoint"):
            checkpoint.load(tmp_path)


def test_leftover_temporary_file_is_ignored_and_never_left_by_save(tmp_path):
    ck, _ = _state()
    checkpoint.save(tmp_path, ck)
    # what a crash in the middle of the next save leaves behind
    (tmp_path / ".checkpoint.npz.half").write_bytes(b"PK\x03\x04 half written")
    assert checkpoint.load(tmp_path).iteration == 3
    ck2, _ = _state(t=5)
    checkpoint.save(tmp_path, ck2)
    assert checkpoint.load(tmp_path).iteration == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [".checkpoint.npz.half",
                                                          "checkpoint.npz"]


def test_previous_records_stop_at_the_checkpoint_and_skip_an_unterminated_line(tmp_path):
    (tmp_path / "iterations.jsonl").write_text("a0\na1\n\na2\na3\n")
    assert checkpoint.previous_records(tmp_path, 3) == ["a0", "a1", "a2"]
    (tmp_path / "iterations.jsonl").write_text('a0\na1\n{"iteration": 2, "lo')
    assert checkpoint.previous_records(tmp_path, 3) == ["a0", "a1"]
    assert checkpoint.previous_records(tmp_path / "none", 3) == []


def test_stop_request_sets_a_flag_and_a_second_sigterm_terminates():
    code = ("import os, signal, time\n"
            "from mpigc.runtime.checkpoint import StopRequest\n"
            "s = StopRequest().install()\n"
            "print(s.requested, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.01)\n"
            "print(s.requested, s.signum == signal.SIGTERM, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGUSR1); time.sleep(0.01)\n"
            "print('alive', flush=True)\n"
            "os.kill(os.getpid(), signal.SIGTERM); time.sleep(1)\n"
            "print('not reached', flush=True)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30)
    assert res.stdout.split() == ["False", "True", "True", "alive"]
    assert res.returncode == -signal.SIGTERM


def test_config_checks_checkpoint_options():
    from mpigc import config
    from mpigc.cli import build_parser

    def cfg(*argv):
        return config.from_args(build_parser().parse_args(["train", *argv]))

    with pytest.raises(UsageError, match="--checkpoint-every 3 needs --out"):
        cfg("--checkpoint-every", "3")
    with pytest.raises(UsageError, match="--checkpoint-every must be >= 0"):
        cfg("--checkpoint-every", "-1", "--out", "x")
    assert cfg("--resume", "d").out == "d"
    assert cfg("--resume", "d", "--out", "e").out == "e"
    fp = checkpoint.fingerprint(cfg("--ell", "2", "--iterations", "7", "--out", "x"), 5)
    assert fp["ell"] == 2 and fp["world_size"] == 5 and fp["faults"] is None
    assert not {"iterations", "out", "resume", "quiet", "checkpoint_every"} & set(fp)


# -- under mpiexec -------------------------------------------------------------------------
def test_lbfgs_stopped_by_sigusr1_and_resumed_is_bit_for_bit(tmp_path):
    # a checkpoint between two L-BFGS steps carries the curvature pairs and the
    # value and gradient at the iterate: the resumed run repeats every evaluation
    opts = ["--scheme", "psgc", "--optimizer", "lbfgs", "--history", 3, "--chunk-time",
            0.04, "--stragglers", _trace(tmp_path / "trace.txt"), "--l2", 1e-3]
    ref, out = str(tmp_path / "ref"), str(tmp_path / "run")
    assert_ok(_mpi(_args(ref, *opts)))
    assert_ok(_mpi(_args(out, *opts), env={"MPIGC_TEST_SIGNAL_AT_ITERATION": str(STOP_AT)}))
    ck = checkpoint.load(out)
    assert ck.steps == STOP_AT and len(ck.optimizer["S"]) == 3
    assert_ok(_mpi(["mpigc", "train", "--resume", out, "--data", DATA,
                    "--iterations", ITERATIONS, "--quiet", *opts]))
    assert np.array_equal(_w(out), _w(ref))
    (s_ref, r_ref), (s, r) = read_run(ref), read_run(out)
    keys = ("iteration", "step", "line_search", "accepted", "loss", "state")
    assert [[x[k] for k in keys] for x in r] == [[x[k] for k in keys] for x in r_ref]
    assert s["optimizer_steps"] == s_ref["optimizer_steps"] == ITERATIONS
    assert s["evaluations"] == len(r) > ITERATIONS and s["stop_reason"] == "max_iterations"
    assert s["run_starts"] == [0, ck.iteration] and s["final_loss"] == s_ref["final_loss"]


@pytest.mark.parametrize("optimizer", ["nesterov", "gd"])
def test_psgc_stopped_by_sigusr1_and_resumed_is_bit_for_bit(optimizer, tmp_path):
    opts = ["--scheme", "psgc", "--optimizer", optimizer, "--chunk-time", 0.04,
            "--stragglers", _trace(tmp_path / "trace.txt"), "--l2", 1e-3]
    ref, out = str(tmp_path / "ref"), str(tmp_path / "run")
    assert_ok(_mpi(_args(ref, *opts)))
    res = assert_ok(_mpi(_args(out, *opts),
                         env={"MPIGC_TEST_SIGNAL_AT_ITERATION": str(STOP_AT)}))
    assert (f"mpigc: checkpoint at iteration {STOP_AT} written to {out}; resume with "
            f"--resume {out}") in res.stdout
    assert not os.path.exists(os.path.join(out, "model.npz"))
    assert checkpoint.load(out).iteration == STOP_AT
    assert_ok(_mpi(["mpigc", "train", "--resume", out, "--data", DATA,
                    "--iterations", ITERATIONS, "--quiet", *opts]))
    assert np.array_equal(_w(out), _w(ref))
    (s_ref, r_ref), (s, r) = read_run(ref), read_run(out)
    assert [x["iteration"] for x in r] == list(range(ITERATIONS))
    # the same trajectory: every fired state, partial ones included, and every loss
    assert [x["state"] for x in r] == [x["state"] for x in r_ref]
    assert any(0 < v < 3 for x in r_ref for v in x["state"])
    assert [x["loss"] for x in r] == [x["loss"] for x in r_ref]
    assert s["iterations"] == ITERATIONS and s["run_starts"] == [0, STOP_AT]
    assert s["final_loss"] == s_ref["final_loss"] and s["lr"] == s_ref["lr"]


def test_periodic_checkpoint_resume_with_random_stragglers_and_lr_auto(tmp_path):
    opts = ["--scheme", "psgc", "--optimizer", "nesterov", "--chunk-time", 0.002,
            "--stragglers", "bimodal:p=0.3,slowdown=4", "--seed", 3]
    ref, out = str(tmp_path / "ref"), str(tmp_path / "run")
    assert_ok(_mpi(_args(ref, *opts)))
    assert_ok(_mpi(_args(out, *opts, "--checkpoint-every", 4)))
    # the last periodic checkpoint (before iteration 8) stays after a finished run
    assert checkpoint.load(out).iteration == 8
    again = str(tmp_path / "again")
    assert_ok(_mpi(["mpigc", "train", "--resume", out, "--out", again, "--data", DATA,
                    "--iterations", ITERATIONS, "--quiet", *opts]))
    np.testing.assert_allclose(_w(again), _w(ref), rtol=1e-12, atol=0)
    s, r = read_run(again)
    assert [x["iteration"] for x in r] == list(range(ITERATIONS))
    assert s["run_starts"] == [0, 8] and s["lr"] == read_run(out)[0]["lr"]
    assert sum(s["triggers"].values()) == ITERATIONS


def test_resume_refuses_a_different_configuration_and_bad_checkpoints(tmp_path):
    from mpigc import config
    from mpigc.cli import build_parser

    out = str(tmp_path / "run")
    os.makedirs(out)
    cfg = config.from_args(build_parser().parse_args(
        ["train", "--data", DATA, "--seed", "3", "--out", out]))
    ck, _ = _state(d=10)
    ck.fingerprint = checkpoint.fingerprint(cfg, WORKERS + 1)
    checkpoint.save(out, ck)
    res = _mpi(["mpigc", "train", "--resume", out, "--data", DATA, "--seed", 4])
    assert_usage_error(res, f"checkpoint in {out} was written with --seed 3, "
                            f"this run has --seed 4")
    open(checkpoint.path(out), "wb").write(b"garbage")
    assert_usage_error(_mpi(["mpigc", "train", "--resume", out, "--data", DATA, "--seed", 3]),
                       "is not a valid checkpoint")


@pytest.mark.parametrize("target,sig", [("mpiexec", signal.SIGUSR1),
                                        ("rank0", signal.SIGUSR1),
                                        ("mpiexec", signal.SIGTERM)],
                         ids=["usr1-to-mpiexec", "usr1-to-rank0", "term-to-mpiexec"])
def test_external_signal_stops_at_an_iteration_boundary(target, sig, tmp_path):
    opts = ["--scheme", "uncoded", "--optimizer", "nesterov", "--chunk-time", 0.01,
            "--stragglers", "bimodal:p=0.3,slowdown=3", "--seed", 1]
    out = str(tmp_path / "run")
    cmd = mpi_command(WORKERS + 1, ["mpigc", "train", "--data", DATA, "--iterations", 400,
                                    "--quiet", "--out", out, *opts])
    proc = start(cmd, env={"NUMBA_CACHE_DIR": str(REPO / ".numba_cache")})
    try:
        live = os.path.join(out, "iterations.jsonl")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                os.path.exists(live) and open(live).read().count("\n") >= 3):
            time.sleep(0.05)
        os.kill(proc.pid if target == "mpiexec" else rank_pid(proc.tag, 0), sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            launch.kill_job(proc.tag)
            proc.communicate()
    assert proc.returncode == 0, stdout[-2000:] + stderr[-2000:]
    k = checkpoint.load(out).iteration
    assert 3 <= k < 400
    assert f"mpigc: checkpoint at iteration {k} written to {out}" in stdout
    assert open(os.path.join(out, "iterations.jsonl")).read().count("\n") == k
    if target == "rank0":
        # uncoded decodes in a fixed order: the resumed run matches an uninterrupted one
        total = k + 3
        assert_ok(_mpi(["mpigc", "train", "--resume", out, "--data", DATA,
                        "--iterations", total, "--quiet", *opts]))
        ref = str(tmp_path / "ref")
        assert_ok(_mpi(_args(ref, *opts, iterations=total)))
        assert np.array_equal(_w(out), _w(ref))
        shutil.rmtree(ref)
