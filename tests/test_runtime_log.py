"""The run log: strict JSON, atomic writes, the iterations file, the progress line."""

import json
import math
import os

import numpy as np
import pytest


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
