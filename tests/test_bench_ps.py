"""``mpigc bench ps`` on tiny cases: the JSON fields and their relations (not the speed)."""

import json

import pytest

from mpiutil import run_cli


@pytest.mark.timeout(180)
def test_bench_ps_json_fields():
    res = run_cli(["bench", "ps", "--json", "--cases", "9:101:2,16:1000:1", "--repeat", "2"],
                  timeout=170, env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [r["n_workers"] for r in out["reports"]] == [8, 64, 1024]
    assert out["report_us"] == out["reports"][1]["report_us"] > 0
    assert out["read_bandwidth_gbytes_per_s"] > 0
    assert [(e["n_workers"], e["d"], e["ell"]) for e in out["decode"]] == [(9, 101, 2),
                                                                           (16, 1000, 1)]
    for e in out["decode"]:
        assert len(e["decode_ms"]) == len(e["tail_ms"]) == 2
        # the tail is part of the decode work; the rate is bytes over the best round
        assert all(0 < t <= w for t, w in zip(e["tail_ms"], e["decode_ms"]))
        blocks = -(-e["d"] // e["ell"])
        assert e["received_mbytes"] == pytest.approx(e["n_workers"] * blocks * 8 / 1e6)
        assert e["decode_gbytes_per_s"] == pytest.approx(
            e["received_mbytes"] / min(e["decode_ms"]))  # MB per ms = GB/s
        assert e["decode_gbytes_per_s_median"] <= e["decode_gbytes_per_s"]
        # the NumPy reference: the same bytes, one round each, ratios of the same round
        assert len(e["numpy_add_ms"]) == 2 and min(e["numpy_add_ms"]) > 0
        assert e["numpy_add_gbytes_per_s"] == pytest.approx(
            e["received_mbytes"] / min(e["numpy_add_ms"]))
        ratios = [r / w for r, w in zip(e["numpy_add_ms"], e["decode_ms"])]
        assert e["decode_vs_numpy_add"] == pytest.approx(sum(ratios) / 2)
