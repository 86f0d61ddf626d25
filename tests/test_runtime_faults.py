"""Faults inside an iteration (``--faults``): a worker that stalls after the state signal
(dropped, second encode round, or waited for), a worker that lags many iterations, one
that fails every iteration, a non-finite vector (the run stops with the last good model).

Runs use 5 workers (6 ranks), small data and ``--verify``, so every iteration's gradient
is checked against NumPy's exact one. Worker 2 is rank 3, a leaf of MPICH's binomial
broadcast tree for 6 ranks, so its stall delays nobody else's broadcasts.
"""

import itertools
import time

import numpy as np
import pytest

from mpigc.errors import EXIT_NONFINITE, UsageError
from mpigc.faults import FaultPlan
from mpiutil import assert_ok, assert_usage_error, read_run, run_cli, run_mpi

EXACT = 1e-10
DATA = "synthetic:n=500,d=6,seed=3"
BASE = ["mpigc", "train", "--data", DATA, "--verify", "--quiet", "--load", "3"]


def _train(tmp_path, *args, ranks=6, timeout=90):
    out = tmp_path / "out"
    res = run_mpi(ranks, BASE + ["--out", out, *map(str, args)], timeout=timeout)
    return res, out


# -- the grammar (no MPI) --------------------------------------------------------------------
def test_fault_plan_answers_by_worker_and_iteration():
    plan = FaultPlan("stall:worker=3,iteration=5,seconds=2.5+fail:worker=1,iteration=2-4"
                     "+nan:worker=0+stall:worker=3,seconds=1")
    assert plan.stall_seconds(3, 5) == 3.5 and plan.stall_seconds(3, 6) == 1.0
    assert plan.stall_seconds(2, 5) == 0
    assert [plan.fails(1, t) for t in range(6)] == [False, False, True, True, True, False]
    assert plan.corrupts(0, 0) and plan.corrupts(0, 10 ** 6) and not plan.corrupts(1, 0)
    assert not FaultPlan(None) and not FaultPlan("")
    assert plan.check_workers(4) is plan
    with pytest.raises(UsageError, match="worker 3 does not exist"):
        plan.check_workers(3)


def test_kill_faults_name_one_point_and_leave_the_fingerprint():
    from mpigc import config
    from mpigc.cli import build_parser
    from mpigc.runtime import checkpoint

    plan = FaultPlan("kill:worker=2,iteration=3,chunks=1+stall:worker=1,seconds=1"
                     "+kill:worker=4,iteration=5,seconds=0.5+kill:worker=2,iteration=3")
    assert plan.kill_point(2, 3) == (0, 0.0)  # the earlier of two points
    assert plan.kill_point(4, 5) == (0, 0.5) and plan.kill_point(4, 4) is None
    assert plan.trajectory_spec() == "stall:worker=1,seconds=1"
    assert FaultPlan("kill:worker=0,iteration=1").trajectory_spec() is None

    def fp(faults):
        args = build_parser().parse_args(["train"] + (["--faults", faults] if faults else []))
        return checkpoint.fingerprint(config.from_args(args), 6)

    assert fp("kill:worker=1,iteration=2") == fp(None)
    assert fp("fail:worker=1+kill:worker=1,iteration=2") == fp("fail:worker=1")


def test_survivors_keep_the_trigger_while_every_chunk_has_ell_live_holders():
    from mpigc.runtime.ps import ParameterServer
    from mpigc.schemes import build_protocol

    # cyclic load 3 over 5 workers: chunk j is held by workers j-2, j-1, j (mod 5)
    ps = ParameterServer(None, build_protocol("psgc", 5, load=3), np.ones(5), 4)
    assert ps.survives([2]) and ps.survives([1, 2]) and ps.uncovered([1, 2]) == []
    assert not ps.survives([1, 2, 3]) and ps.uncovered([1, 2, 3]) == [3]
    ell2 = ParameterServer(None, build_protocol("psgc", 5, load=3, ell=2), np.ones(5), 4)
    assert ell2.uncovered([1, 2]) == [2, 3] and not ell2.survives([1, 2])
    uncoded = ParameterServer(None, build_protocol("uncoded", 5), np.ones(5), 4)
    assert not uncoded.survives([4]) and uncoded.uncovered([4]) == [4]
    gc = ParameterServer(None, build_protocol("gc", 5, load=3), np.ones(5), 4)  # s = 2
    assert gc.survives([0, 3]) and not gc.survives([0, 1, 3])


@pytest.mark.parametrize("spec, fragment", [
    ("crash:worker=1", "unknown fault 'crash'"),
    ("stall:worker=1", "missing seconds"),
    ("stall:worker=x,seconds=1", "worker='x' is not an integer"),
    ("stall:worker=1,seconds=-2", "seconds must be a positive"),
    ("stall:worker=1,seconds=nan", "seconds must be a positive"),
    ("fail:worker=1,iteration=5-2", "empty iteration range"),
    ("fail:worker=1,every=2", "unknown key 'every'"),
    ("nan:worker=1,worker=2", "worker given twice"),
    ("nan:worker=-1", "worker must be >= 0"),
    ("nan:worker=1++fail:worker=2", "empty fault"),
    ("fail:worker", "expected key=value"),
])
def test_malformed_faults_name_the_bad_part(spec, fragment):
    with pytest.raises(UsageError, match=fragment.replace("(", r"\(")):
        FaultPlan(spec)


def test_allreduce_refuses_faults():
    from mpigc import config
    from mpigc.cli import build_parser

    args = build_parser().parse_args(["train", "--scheme", "allreduce", "--faults",
                                      "fail:worker=0"])
    with pytest.raises(UsageError, match="allreduce has no parameter server"):
        config.from_args(args).fault_plan(4)


def test_malformed_faults_are_refused_before_mpi():
    assert_usage_error(run_cli(["train", "--faults", "stall:worker=1,seconds=0"], timeout=60),
                       "seconds must be a positive")


def test_fault_on_a_missing_worker_stops_every_rank():
    res = run_mpi(4, ["mpigc", "train", "--data", DATA, "--faults", "fail:worker=3"],
                  timeout=60)
    assert_usage_error(res, "worker 3 does not exist (the run has 3 workers")


# -- a stalled worker ------------------------------------------------------------------------
def test_stall_with_decodable_remainder_takes_a_second_round(tmp_path):
    # Workers 1 and 2 both start with chunk 2, so once the trigger fires (chunk 1 covered
    # at position 2, 0.2 s) worker 2 is redundant: the PS drops it and re-encodes.
    orders = tmp_path / "orders.txt"
    orders.write_text("0 1 2\n2 1 3\n2 3 4\n3 4 0\n4 0 1\n")
    res, out = _train(tmp_path, "--ordering", orders, "--chunk-time", 0.1, "--iterations", 5,
                      "--transmit-timeout", 0.3, "--faults",
                      "stall:worker=2,iteration=2,seconds=1.5")
    assert_ok(res)
    _, rec = read_run(out)
    stalled = rec[2]
    assert stalled["dropped"] == [2] and stalled["rounds"] == 2
    assert stalled["state"][2] == 0 and stalled["trigger"] == "exact"
    assert stalled["recovered_fraction"] == 1.0
    assert max(r["grad_rel_err"] for r in rec) <= EXACT
    assert [r["rounds"] for r in rec[:2]] == [1, 1]
    # The stalled worker's round-1 vector arrived later and was discarded.
    assert sum(r["stale_messages"] for r in rec[2:]) >= 1


def test_stall_without_decodable_remainder_exact_mode_waits(tmp_path):
    # Optimal ordering: at the trigger every chunk is covered once; nobody can be dropped.
    res, out = _train(tmp_path, "--chunk-time", 0.01, "--iterations", 5,
                      "--transmit-timeout", 0.2, "--faults",
                      "stall:worker=2,iteration=2,seconds=1")
    assert_ok(res)
    _, rec = read_run(out)
    assert rec[2]["waited"] and rec[2]["dropped"] == [] and rec[2]["rounds"] == 1
    assert rec[2]["duration_s"] >= 0.9
    assert not any(r["waited"] for i, r in enumerate(rec) if i != 2)
    assert max(r["grad_rel_err"] for r in rec) <= EXACT


@pytest.fixture(scope="module")
def deadline_lag(tmp_path_factory):
    """psgc in deadline mode; worker 2 stalls 1.5 s in iteration 2 (many iterations), in
    which workers 0 and 1 fail, so that worker 2 alone holds chunk 2 there."""
    tmp = tmp_path_factory.mktemp("lag")
    res, out = _train(tmp, "--chunk-time", 0.01, "--iterations", 60, "--deadline", 5,
                      "--transmit-timeout", 0.2, "--faults",
                      "stall:worker=2,iteration=2,seconds=1.5+fail:worker=0,iteration=2"
                      "+fail:worker=1,iteration=2")
    assert_ok(res)
    return read_run(out)[1]


def test_stall_without_decodable_remainder_deadline_mode_is_approximate(deadline_lag):
    stalled = deadline_lag[2]
    assert stalled["dropped"] == [2] and stalled["rounds"] == 2
    assert stalled["trigger"] == "deadline" and stalled["state"][2] == 0
    # Chunk 2 (held only by worker 2 there) is lost: the decode projects the rest.
    assert 0 < stalled["recovered_fraction"] <= 0.8
    assert stalled["grad_rel_err"] > 1e-3


def test_lagging_worker_is_left_out_then_rejoins_without_stale_data(deadline_lag):
    after = deadline_lag[3:]
    absent = list(itertools.takewhile(lambda r: r["state"][2] == 0, after))
    assert len(absent) >= 5, [r["state"] for r in after]  # it lagged several iterations
    assert any(r["state"][2] > 0 for r in after[len(absent):])  # and came back
    assert all(r["trigger"] == "exact" and r["rounds"] == 1 for r in after)
    assert max(r["grad_rel_err"] for r in after) <= EXACT
    assert len(deadline_lag) == 60 and [r["iteration"] for r in deadline_lag] == list(range(60))


@pytest.mark.parametrize("scheme", ["psgc", "gc"])
def test_worker_that_fails_every_iteration(tmp_path, scheme):
    res, out = _train(tmp_path, "--scheme", scheme, "--chunk-time", 0.005,
                      "--iterations", 12, "--faults", "fail:worker=3")
    assert_ok(res)
    _, rec = read_run(out)
    assert len(rec) == 12 and all(r["state"][3] == 0 for r in rec)
    assert all(r["trigger"] == "exact" for r in rec)
    assert max(r["grad_rel_err"] for r in rec) <= EXACT


# -- a non-finite vector ---------------------------------------------------------------------
def test_nonfinite_vector_stops_the_run_and_keeps_the_last_good_model(tmp_path):
    # uncoded waits for every worker, so worker 1's vector is always in the decode (under
    # psgc a slow worker 1 may be left out of the state and its NaN never sent)
    every = ["--scheme", "uncoded", "--load", "1"]
    res, out = _train(tmp_path, "--iterations", 10, "--faults", "nan:worker=1,iteration=3",
                      *every)
    assert res.returncode == EXIT_NONFINITE, res.stderr[-3000:]
    lines = res.stderr.strip().splitlines()
    assert lines == [f"mpigc: error: non-finite gradient or loss from worker 1 in iteration 3;"
                     f" last good model kept in {out / 'model.npz'}"]
    summary, rec = read_run(out)
    assert [r["iteration"] for r in rec] == [0, 1, 2, 3]
    assert "worker 1 in iteration 3" in summary["error"]
    # Independent reference: the same run without the fault, stopped after 3 iterations.
    ref_res = run_mpi(6, BASE + ["--out", tmp_path / "ref", "--iterations", 3] + every,
                      timeout=60)
    assert_ok(ref_res)
    w = np.load(out / "model.npz")["coef"]
    np.testing.assert_allclose(w, np.load(tmp_path / "ref" / "model.npz")["coef"], rtol=1e-9,
                               atol=1e-12)


def test_nonfinite_share_of_a_reduction_is_named(tmp_path):
    # --decode reduce: the vector travels in the reduction, its finiteness in the message
    res, _ = _train(tmp_path, "--iterations", 6, "--faults", "nan:worker=1,iteration=3",
                    "--scheme", "uncoded", "--load", "1", "--decode", "reduce")
    assert res.returncode == EXIT_NONFINITE, res.stderr[-3000:]
    assert "non-finite gradient or loss from worker 1 in iteration 3" in res.stderr


# -- the PS's rounds, without MPI (deterministic) ----------------------------------------------
class _FakeComm:
    """The PS's side of :class:`mpigc.runtime.comm.Comm`, with workers that encode at once.

    ``late`` workers send their round-1 vector only ``delay`` seconds after the broadcast.
    """

    def __init__(self, protocol, grads, counts, late, delay):
        self.protocol, self.grads, self.late, self.delay = protocol, grads, late, delay
        self.progress = [(i + 1, np.array([0.0, c])) for i, c in enumerate(counts)]
        self.queue, self.held, self.reencodes = [], [], []

    def _vector(self, worker, state, round_):
        s = int(state[worker])
        order = self.protocol.assignment.orderings[worker]
        y = self.protocol.encode(worker, state, {j: self.grads[j] for j in order[:s]})
        return worker + 1, np.concatenate((y, [0, round_, 0, s], np.zeros(s)))

    def poll_progress(self):
        return self.progress.pop(0) if self.progress else None

    def post_state(self, n, state, trigger):
        self.sent_at = time.perf_counter()
        for i in self.protocol.senders(state):
            (self.held if i in self.late else self.queue).append(self._vector(i, state, 1))
        return None, None

    def wait(self, request):
        pass

    def poll_transmission(self, into):
        if self.held and time.perf_counter() - self.sent_at >= self.delay:
            self.queue.append(self.held.pop(0))
        if not self.queue:
            return None
        rank, buf = self.queue.pop(0)
        row = into(rank)[:len(buf)]
        row[:] = buf  # as MPI does: the message lands in the PS's receive row
        return rank, row

    @staticmethod
    def unpack_transmission(buf, block_len):
        h = buf[block_len:]
        s = int(h[3])
        return int(h[0]), int(h[1]), h[4:4], h[4:4 + s], buf[:block_len]

    def send_reencode(self, rank, iteration, round_, state, trigger):
        self.reencodes.append((rank, round_))
        self.queue.append(self._vector(rank - 1, state, round_))


def _ps_round(late, deadline=None, delay=0.3):
    from mpigc.runtime.ps import ParameterServer
    from mpigc.schemes import build_protocol

    protocol = build_protocol("psgc", 6, load=3, ell=2, ordering="natural", seed=1,
                              deadline=deadline)
    rng = np.random.default_rng(7)
    grads = rng.standard_normal((6, 11))
    comm = _FakeComm(protocol, grads, [3] * 6, late, delay)
    ps = ParameterServer(comm, protocol, np.full(6, 10), 11, transmit_timeout=0.05)
    return ps.gather(0, np.zeros(11)), grads, comm


# Chunk j is held by workers j-2, j-1, j (mod 6); the trigger (every chunk covered twice)
# fires on the report of worker 4, so the broadcast state is [3, 3, 3, 3, 3, 0].
def test_ps_drops_a_late_worker_and_reencodes_exactly():
    got, grads, comm = _ps_round(late={2})
    assert got.dropped == [2] and got.rounds == 2 and not got.waited
    assert got.state.tolist() == [3, 3, 0, 3, 3, 0]
    assert sorted(comm.reencodes) == [(r, 2) for r in (1, 2, 4, 5)]
    np.testing.assert_allclose(got.grad, grads.sum(axis=0), rtol=1e-12, atol=1e-12)
    assert got.trigger == "exact"


def test_ps_waits_in_exact_mode_when_the_rest_cannot_decode():
    # ell = 2 and load 3: dropping two neighbours leaves a chunk covered once.
    got, grads, comm = _ps_round(late={2, 3})
    assert got.waited and got.dropped == [] and got.rounds == 1 and not comm.reencodes
    np.testing.assert_allclose(got.grad, grads.sum(axis=0), rtol=1e-12, atol=1e-12)


def test_ps_decodes_approximately_in_deadline_mode():
    got, grads, comm = _ps_round(late={2, 3}, deadline=10.0)
    assert got.dropped == [2, 3] and got.rounds == 2 and got.trigger == "deadline"
    # Chunks 3, 4, 5 are left with one processor each: projected, not recovered.
    assert got.state.tolist() == [3, 3, 0, 0, 3, 0]
    assert got.recovered == pytest.approx(3 / 6)
    # SPEC section 3 by brute force: each chunk's ell blocks projected onto the span of
    # its processors' beta columns (d = 11 padded to 12, blocks of 6).
    beta = comm.protocol.code.beta
    expected = np.zeros(12)
    for j, S in enumerate([[0, 4], [0, 1], [0, 1], [1], [4], [4]]):
        blocks = np.pad(grads[j], (0, 1)).reshape(2, 6)
        expected += (beta[:, S] @ np.linalg.pinv(beta[:, S]) @ blocks).ravel()
    np.testing.assert_allclose(got.grad, expected[:11], rtol=1e-10, atol=1e-12)
