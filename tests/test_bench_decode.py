"""``mpigc bench decode`` on tiny cases: the JSON fields and their relations (not the speed)."""

import json
import statistics

import pytest

from mpigc.bench.decode import crossover
from mpiutil import run_cli


@pytest.mark.timeout(180)
def test_bench_decode_json_fields():
    res = run_cli(["bench", "decode", "--json", "--cases", "2:300:1,3:1000:1,3:1001:2",
                   "--pairs", "2", "--block", "2"], timeout=170, env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [(e["n_workers"], e["d"], e["ell"]) for e in out["cases"]] == [
        (2, 300, 1), (3, 1000, 1), (3, 1001, 2)]
    for e in out["cases"]:
        # both decodes are exact: the gradient is the sum of the chunk vectors
        assert max(e["max_rel_err"].values()) <= 1e-10
        assert len(e["p2p_ms_blocks"]) == len(e["reduce_ms_blocks"]) == 2
        assert e["p2p_ms"] == pytest.approx(statistics.median(e["p2p_ms_blocks"]))
        assert e["reduce_ms"] == pytest.approx(statistics.median(e["reduce_ms_blocks"]))
        ratios = [r / p for p, r in zip(e["p2p_ms_blocks"], e["reduce_ms_blocks"])]
        assert e["reduce_over_p2p"] == pytest.approx(statistics.median(ratios))
    assert set(out["crossover_d"]) == {"2", "3"}
    assert out["oversubscribed"] == (4 > out["cores"])
    # each job reports the MPICH settings its ranks ran with (the launcher's own)
    assert set(out["mpi_settings"]) == {"2", "3"}


def test_crossover_is_where_reduce_stays_faster():
    def case(n, d, ratio, ell=1):
        return {"n_workers": n, "d": d, "ell": ell, "reduce_over_p2p": ratio}

    entries = [case(4, 10, 1.2), case(4, 100, 0.9), case(4, 1000, 0.8),
               case(8, 10, 0.9), case(8, 100, 1.1), case(8, 1000, 0.95),
               case(16, 10, 1.3), case(16, 100, 1.01), case(16, 100, 0.5, ell=2)]
    assert crossover(entries) == {"4": 100, "8": 1000, "16": None}
