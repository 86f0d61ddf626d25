"""The cost model of ``mpigc simulate --cost-model``: its terms, checked by hand."""

import json

import numpy as np
import pytest

from mpigc.errors import UsageError
from mpigc.schemes import build_protocol
from mpigc.sim.cost import CostModel, iteration_seconds
from mpigc.stragglers import parse_stragglers
from mpiutil import run_cli

BENCH = {"report_us": 2.0, "read_bandwidth_gbytes_per_s": 16.0,
         "decode": [{"n_workers": 4, "d": 10, "ell": 1, "received_mbytes": 1e-4,
                     "decode_gbytes_per_s": 1.0, "decode_tail_ms": 1.0},
                    {"n_workers": 256, "d": 100000, "ell": 1, "received_mbytes": 204.8,
                     "decode_gbytes_per_s": 8.0, "decode_tail_ms": 0.8}]}


def test_calibration_from_bench_and_collectives():
    c = CostModel.from_bench(BENCH, latency_s=1e-6, bandwidth_bytes_per_s=1e10)
    # the largest decode case calibrates: 8 GB/s, 0.8 ms for a vector of 800 kB
    assert c.decode_bytes_per_s == 8e9 and c.tail_s_per_byte == pytest.approx(0.8e-3 / 8e5)
    assert c.report_s == 2e-6 and c.read_bytes_per_s == 16e9
    assert c.bcast(9, 800) == pytest.approx(4 * (1e-6 + 800 / 1e10))  # binomial, 4 hops
    assert c.bcast(8, 8e6) == pytest.approx(3e-6 + 2 * 7 / 8 * 8e6 / 1e10)
    assert c.reduce(8, 8e6) == pytest.approx(3e-6 + 2 * 7 / 8 * 8e6 / 1e10 + 7 / 8 * 8e6 / 16e9)


def test_psgc_without_stragglers_fires_after_one_chunk_and_pays_its_costs():
    c = CostModel.from_bench(BENCH, latency_s=1e-6, bandwidth_bytes_per_s=1e10)
    n, d, chunk = 64, 100_000, 0.01
    p = build_protocol("psgc", n)
    t = iteration_seconds(p, parse_stragglers("none", n, 0), 2, c, d, chunk)
    # every worker reports its first chunk at once: N reports queue at the PS
    start = c.bcast(n + 1, 8 * (d + 2))
    fired = start + chunk + 1e-6 + n * 2e-6 + c.bcast(n + 1, 8 * (n + 1))
    ingress = n * 8 * d
    gather = 1e-6 + max(ingress / 1e10, (ingress - 8 * 8 * d) / 8e9) + 8 * 8 * d / 8e9 \
        + c.tail_s_per_byte * 8 * d
    assert t == pytest.approx([fired + gather + c.update_s(d)] * 2)
    # the reduction moves d values into the PS instead of N d
    p_red = build_protocol("psgc", n, decode_via="reduce")
    t_red = iteration_seconds(p_red, parse_stragglers("none", n, 0), 1, c, d, chunk)
    assert t_red[0] == pytest.approx(fired + c.reduce(n + 1, 8 * d) + c.update_s(d))
    assert t_red[0] < t[0]


def test_allreduce_waits_for_the_slowest_worker():
    c = CostModel.from_bench(BENCH)
    model = parse_stragglers("bimodal:p=0.5,slowdown=8", 16, 0)
    p = build_protocol("allreduce", 16)
    t = iteration_seconds(p, model, 3, c, 100, 0.01)
    for k in range(3):
        slowest = model.factors(k).max() * 0.01
        assert t[k] == pytest.approx(slowest + c.bcast(17, 816) + c.allreduce(17, 8 * 117)
                                     + c.update_s(100))


def test_bad_cost_model_files(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"report_us": 1}))
    with pytest.raises(UsageError, match="not the output of 'mpigc bench ps --json'"):
        CostModel.from_file(tmp_path / "x.json")
    bad = dict(BENCH, report_us=-1)
    with pytest.raises(UsageError, match="report_s must be a positive number"):
        CostModel.from_bench(bad)
    with pytest.raises(UsageError, match="--latency must be a finite number >= 0"):
        CostModel.from_bench(BENCH, latency_s=np.nan)


def test_simulate_cli_predicts_what_the_model_computes(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(BENCH))
    res = run_cli(["simulate", "--workers", 8, "--trials", 4, "--stragglers",
                   "shifted-exp:shift=1,rate=1", "--cost-model", bench, "--chunk-time", 0.1,
                   "--dim", 100, "--latency", 2e-4, "--bandwidth", 5e9, "--json"])
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    cost = CostModel.from_bench(BENCH, latency_s=2e-4, bandwidth_bytes_per_s=5e9)
    t = iteration_seconds(build_protocol("psgc", 8),
                          parse_stragglers("shifted-exp:shift=1,rate=1", 8, 0), 4, cost, 100, 0.1)
    assert out["mode"] == "cost-model" and out["decoded_trials"] == 4
    assert out["iteration_s_mean"] == pytest.approx(float(np.mean(t)), rel=1e-12)
