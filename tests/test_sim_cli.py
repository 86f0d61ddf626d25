"""`mpigc simulate` and `mpigc simulate --replay` through the command line."""

import json

import pytest

from mpigc import cli


def run(capsys, *argv):
    code = cli.main(["simulate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_json_has_the_contract_keys(capsys):
    code, out, _ = run(capsys, "--scheme", "psgc", "--workers", "12", "--load", "3", "--ell", "2",
                       "--stragglers", "shifted-exp:shift=1,rate=1", "--trials", "50", "--json")
    assert code == 0
    s = json.loads(out)
    for key in ("completion_mean", "completion_std", "mse_mean", "mse_std", "trials", "scheme",
                "workers", "load", "ell", "recovered_mean"):
        assert key in s
    assert s["trials"] == 50 and s["workers"] == 12 and s["load"] == 3 and s["ell"] == 2
    assert s["mode"] == "exact" and s["mse_mean"] < 1e-20 and s["recovered_mean"] == 1.0
    assert 2 <= s["completion_mean"] <= 12


def test_simulate_deadline_mode_text(capsys):
    code, out, _ = run(capsys, "--scheme", "gc", "--workers", "8", "--load", "3", "--deadline", "4",
                       "--stragglers", "exp:mean=1", "--trials", "20")
    assert code == 0 and "deadline mode" in out and "decode error" in out


@pytest.mark.parametrize("argv, message", [
    (("--stragglers", "exp:mean=-1"), "mean must be > 0"),
    (("--workers", "0"), "--workers"),
    (("--trials", "0"), "--trials"),
    (("--deadline", "-2"), "--deadline"),
    (("--ell", "5", "--load", "3"), "ell"),
    (("--replay", "/nonexistent/run"), "no such directory"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, "--trials", "3", *argv)
    assert code == 2 and out == ""
    assert err.startswith("mpigc: error:") and message in err and err.count("\n") == 1


def write_run(tmp_path, config, iterations):
    (tmp_path / "summary.json").write_text(json.dumps({
        "scheme": config["scheme"], "n_workers": config["workers"], "load": config["load"],
        "ell": config["ell"], "config": config}))
    (tmp_path / "iterations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in iterations))


CONFIG = {"scheme": "psgc", "assignment": "cyclic", "load": 2, "ell": 1, "ordering": "natural",
          "seed": 0, "tolerance": 0, "deadline": None, "beta": "gaussian", "workers": 4,
          "orderings": [[0, 1], [1, 2], [2, 3], [3, 0]]}
# worker i processes chunks i, i+1 (mod 4); worked by hand (ell = 1):
#  it 0: chunk 0 at 1.0 (w0), 1 at 0.5 (w1), 2 at 3.0 (w2), 3 at 3.0 + 1.0 (w2) -> 4.0
#  it 1: chunk 0 at 1 (w0), 1 at 1 (w1), 2 at 2 (w1), 3 at 2 (w3) -> 2.0
#  it 2: nobody finished anything -> never
ITERATIONS = [
    {"iteration": 0, "duration_s": 4.4, "trigger": "exact", "state": [2, 1, 2, 0],
     "chunk_times": [[1.0, 1.0], [0.5], [3.0, 1.0], []]},
    {"iteration": 1, "duration_s": 2.4, "trigger": "exact", "state": [2, 2, 0, 2],
     "chunk_times": [[1.0, 1.0], [1.0, 1.0], [], [2.0]]},
    {"iteration": 2, "duration_s": 9.0, "trigger": "timeout", "state": [0, 0, 0, 0],
     "chunk_times": [[], [], [], []]},
]


def test_replay_predicts_a_hand_made_run(tmp_path, capsys):
    write_run(tmp_path, CONFIG, ITERATIONS)
    code, out, _ = run(capsys, "--replay", str(tmp_path), "--json")
    assert code == 0
    r = json.loads(out)
    assert [it["predicted_s"] for it in r["iterations"]] == [4.0, 2.0, None]
    assert [it["same_state"] for it in r["iterations"]] == [True, False, True]
    assert r["unpredicted"] == 1
    assert r["overhead_ratio"] == pytest.approx((4.4 + 2.4) / 6.0)
    code, out, _ = run(capsys, "--replay", str(tmp_path))
    assert code == 0 and "overhead_ratio" in out and "never" in out


def test_replay_deadline_and_gc(tmp_path, capsys):
    write_run(tmp_path, {**CONFIG, "deadline": 3.0}, ITERATIONS[:2])
    r = json.loads(run(capsys, "--replay", str(tmp_path), "--json")[1])
    assert [it["predicted_s"] for it in r["iterations"]] == [3.0, 2.0]
    # gc (tolerance 1 at load 2): the 3rd finished worker triggers; it 0: w0 at 2, w2 at 4
    gc = {**CONFIG, "scheme": "gc", "tolerance": None}
    write_run(tmp_path, gc, ITERATIONS[:2])
    r = json.loads(run(capsys, "--replay", str(tmp_path), "--json")[1])
    assert [it["predicted_s"] for it in r["iterations"]] == [None, None]
    its = [{**ITERATIONS[0], "chunk_times": [[1.0, 1.0], [0.5, 0.5], [3.0, 1.0], []]}]
    write_run(tmp_path, gc, its)
    r = json.loads(run(capsys, "--replay", str(tmp_path), "--json")[1])
    assert r["iterations"][0]["predicted_s"] == 4.0


@pytest.mark.parametrize("mutate, message", [
    (lambda its: its[0].pop("chunk_times"), "missing 'chunk_times'"),
    (lambda its: its[0].update(chunk_times=[[1.0]]), "must list 4 workers"),
    (lambda its: its[0].update(chunk_times=[[1.0, 1.0, 1.0], [], [], []]), "3 chunk times"),
    (lambda its: its[0].update(chunk_times=[[-1.0], [], [], []]), "negative"),
])
def test_replay_bad_records(tmp_path, capsys, mutate, message):
    its = json.loads(json.dumps(ITERATIONS))
    mutate(its)
    write_run(tmp_path, CONFIG, its)
    code, _, err = run(capsys, "--replay", str(tmp_path))
    assert code == 2 and message in err


def test_replay_rejects_allreduce_and_bad_json(tmp_path, capsys):
    write_run(tmp_path, {**CONFIG, "scheme": "allreduce"}, ITERATIONS)
    assert "allreduce" in run(capsys, "--replay", str(tmp_path))[2]
    write_run(tmp_path, CONFIG, ITERATIONS)
    with open(tmp_path / "iterations.jsonl", "a") as f:
        f.write("{not json\n")
    code, _, err = run(capsys, "--replay", str(tmp_path))
    assert code == 2 and "line 4" in err
