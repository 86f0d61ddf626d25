"""`make figures` end to end at a tiny trial count: every PNG and CSV is written."""

import csv
import json

from mpigc.sim import figures


def test_figures_write_png_csv_and_headline(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "C_NS", (10, 20))  # the large N only cost time here
    assert figures.main(["--out", str(tmp_path), "--trials-scale", "0.005"]) == 0
    for stem in ("a_completion_vs_ell", "b_mse_vs_deadline", "c_accuracy_vs_n"):
        assert (tmp_path / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        with open(tmp_path / f"{stem}.csv") as f:
            assert len(list(csv.DictReader(f))) >= 16
    head = json.loads((tmp_path / "headline.json").read_text())
    assert head["exact_cyclic"]["ell1"]["gc"] > head["exact_cyclic"]["ell1"]["psgc"]
    assert head["deadline_ell1"]["mse_gc"] > head["deadline_ell1"]["mse_psgc"]
