"""`make figures` end to end at a tiny trial count: every PNG and CSV is written."""

import csv
import json

from mpigc.sim import figures


def test_figures_write_png_csv_and_headline(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "C_NS", (10, 20))  # the large N only cost time here
    monkeypatch.setattr(figures, "D_WORKERS", (8, 16, 32, 64))
    bench = tmp_path / "bench_ps.json"  # the shape of `mpigc bench ps --json`
    bench.write_text(json.dumps({"report_us": 2.0, "read_bandwidth_gbytes_per_s": 16.0,
                                 "decode": [{"n_workers": 256, "received_mbytes": 204.8,
                                             "decode_gbytes_per_s": 8.0,
                                             "decode_tail_ms": 1.0}]}))
    assert figures.main(["--out", str(tmp_path), "--trials-scale", "0.005",
                         "--cost-model", str(bench)]) == 0
    for stem in ("a_completion_vs_ell", "b_mse_vs_deadline", "c_accuracy_vs_n",
                 "d_projection_vs_n"):
        assert (tmp_path / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        with open(tmp_path / f"{stem}.csv") as f:
            assert len(list(csv.DictReader(f))) >= 16
    head = json.loads((tmp_path / "headline.json").read_text())
    assert head["exact_cyclic"]["ell1"]["gc"] > head["exact_cyclic"]["ell1"]["psgc"]
    assert head["deadline_ell1"]["mse_gc"] > head["deadline_ell1"]["mse_psgc"]
    # every projected curve has the worker count where it is fastest
    assert len(head["projection"]) == 3 * 2 * 3
    assert all(v["fastest_at_workers"] in (8, 16, 32, 64) for v in head["projection"].values())
