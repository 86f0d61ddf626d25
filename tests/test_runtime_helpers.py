"""Pure-Python parts of the runtime (no MPI)."""

import json
import math
import os
import time
from types import SimpleNamespace

import numpy as np
import pytest


# -- unit tests ----------------------------------------------------------------------------
def test_backoff_grows_to_its_ceiling_and_resets():
    from mpigc.runtime.poll import Backoff

    b = Backoff(first=1e-6, longest=8e-6)
    delays = []
    for _ in range(6):
        delays.append(b.delay)
        b.wait()
    assert delays == [1e-6, 2e-6, 4e-6, 8e-6, 8e-6, 8e-6]
    b.reset()
    assert b.delay == 1e-6
    t0 = time.perf_counter()
    Backoff(first=0.5, longest=0.5).wait(at_most=0.0)
    assert time.perf_counter() - t0 < 0.1


def test_clean_makes_strict_json():
    from mpigc.runtime.log import clean

    obj = clean({"a": np.float64(1.5), "b": np.array([1, 2]), "c": float("nan"),
                 "d": [np.int64(3), math.inf], 4: (np.float32(0.25),)})
    assert obj == {"a": 1.5, "b": [1, 2], "c": None, "d": [3, None], "4": [0.25]}
    json.dumps(obj, allow_nan=False)


def test_atomic_writes_leave_no_temporary_and_keep_old_file_on_failure(tmp_path):
    from mpigc.runtime import log

    path = tmp_path / "summary.json"
    log.write_json(path, {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    with pytest.raises(TypeError):
        log.write_json(path, {"x": object()})
    assert json.loads(path.read_text()) == {"x": 1}
    assert sorted(os.listdir(tmp_path)) == ["summary.json"]
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)


def test_run_log_iterations_are_readable_while_the_run_goes_on(tmp_path):
    from mpigc.runtime.log import RunLog, read_records

    live = tmp_path / "iterations.jsonl"
    live.write_text("old run\n")
    run = RunLog(str(tmp_path), 2, quiet=True)
    assert read_records(live) == ["old run"]  # kept until the first new record
    run.iteration({"iteration": 0, "duration_s": 0.1, "loss": np.float64(0.5),
                   "trigger": "exact"})
    assert run.triggers == {"exact": 1}
    assert [json.loads(r)["loss"] for r in read_records(live)] == [0.5]
    assert sorted(os.listdir(tmp_path)) == ["iterations.jsonl"]  # no summary: not finished
    with open(live, "ab") as f:  # what a reader may meet: a write in progress
        f.write(b'{"iteration": 1, "dur')
    assert len(read_records(live)) == 1
    run.restore(read_records(live), {"exact": 1})  # a resume rewrites whole records only
    run.iteration({"iteration": 1, "duration_s": 0.1, "loss": 0.25, "trigger": "exact"})
    run.finish({"scheme": "psgc"}, {"w": np.arange(3.0)})
    assert sorted(os.listdir(tmp_path)) == ["iterations.jsonl", "model.npz", "summary.json"]
    assert [json.loads(r)["iteration"] for r in live.read_text().splitlines()] == [0, 1]
    assert np.load(tmp_path / "model.npz")["w"].tolist() == [0.0, 1.0, 2.0]


def test_check_out_dir(tmp_path):
    from mpigc.runtime.log import check_out_dir

    assert check_out_dir(str(tmp_path / "new" / "dir")) is None
    (tmp_path / "file").write_text("x")
    assert "not a directory" in check_out_dir(str(tmp_path / "file"))


def _args(**over):
    base = dict(scheme="psgc", assignment="cyclic", load=None, ell=1, ordering="optimal",
                beta="gaussian", tolerance=None, deadline=None, stragglers="none", seed=0,
                data=None, model="logistic", chunk_time=0.0, iterations=5, optimizer="gd",
                lr="auto", l2=1e-4, out=None, verify=False, resume=None, checkpoint_every=0,
                faults=None, transmit_timeout=None, dtype="float64", row_block=256,
                quiet=True, iteration_timeout=None)
    base.update(over)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("over, match", [
    (dict(iterations=0), "--iterations"),
    (dict(lr="fast"), "--lr"),
    (dict(lr="-1"), "--lr"),
    (dict(chunk_time=float("nan")), "--chunk-time"),
    (dict(l2=-1.0), "--l2"),
    (dict(row_block=0), "--row-block"),
    (dict(iteration_timeout=0.0), "--iteration-timeout"),
    (dict(checkpoint_every=-1), "--checkpoint-every"),
    (dict(faults="bogus"), "--faults"),
])
def test_config_rejects_bad_options(over, match):
    from mpigc import config
    from mpigc.errors import UsageError

    with pytest.raises(UsageError, match=match):
        config.from_args(_args(**over))


def test_config_builds_protocol_and_refuses_failures_with_allreduce():
    from mpigc import config
    from mpigc.errors import UsageError

    cfg = config.from_args(_args(lr="0.5"))
    assert cfg.lr == 0.5 and config.from_args(_args()).lr is None
    p = cfg.protocol(4)
    assert p.scheme.name == "psgc" and p.assignment.n_workers == 4
    ar = config.from_args(_args(scheme="allreduce",
                                stragglers="bimodal:p=0.1,slowdown=2+fail:p=0.1"))
    with pytest.raises(UsageError, match="allreduce"):
        ar.straggler_model(4)


def test_safety_timeout_adapts_to_the_run():
    from mpigc.runtime.ps import TIMEOUT_FACTOR, TIMEOUT_FLOOR, ParameterServer
    from mpigc.schemes import build_protocol

    protocol = build_protocol("uncoded", 4)
    ps = ParameterServer(None, protocol, np.full(4, 10), 3)
    assert ps.limit() == math.inf  # first iteration, nothing reported: chunks may be long
    assert ps.limit(first_report=0.001) == TIMEOUT_FLOOR
    assert ps.limit(first_report=2.0) == TIMEOUT_FACTOR * 2.0
    for seconds in (0.5, 0.3, 9.0):
        ps.record(seconds)
    assert ps.limit() == TIMEOUT_FACTOR * 0.5
    assert ps.limit(first_report=0.7) == TIMEOUT_FACTOR * 0.7
    assert ParameterServer(None, protocol, np.full(4, 10), 3, timeout=0.25).limit(5.0) == 0.25


class _Stream:
    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass


@pytest.mark.parametrize("tty", [False, True])
def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise(tty):
    from mpigc.runtime.log import RunLog

    stream = _Stream(tty)
    run = RunLog(None, 20, stream=stream)
    for t in range(20):
        run.iteration({"iteration": t, "duration_s": 0.01, "loss": 1.0 / (t + 1),
                       "trigger": "exact"})
    if tty:
        assert stream.text.count("\r") == 20 and stream.text.endswith("\n")
        assert "[" + "#" * 30 + "] iteration 20/20" in stream.text
    else:
        lines = stream.text.splitlines()
        assert len(lines) == 10 and lines[-1].startswith("mpigc: iteration 20/20  loss 0.05")
    quiet = _Stream(tty)
    RunLog(None, 3, quiet=True, stream=quiet).iteration(
        {"iteration": 0, "duration_s": 0.01, "loss": 1.0, "trigger": "exact"})
    assert quiet.text == ""
