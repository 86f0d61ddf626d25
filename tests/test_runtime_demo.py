"""The main job's table and plot (the MPI runs themselves are covered by the other
runtime tests; ``make run`` runs the whole job)."""

import pytest


def _fake(scheme, mean, loss):
    summary = {"scheme": scheme, "mean_iteration_s": mean, "final_loss": loss,
               "accuracy": 0.9, "max_grad_rel_err": 1e-14, "total_s": 5 * mean}
    records = [{"duration_s": mean, "elapsed_s": mean * (k + 1),
                "objective": loss + 0.1 / (k + 1) ** 8} for k in range(5)]
    return summary, records


def test_table_reports_speedup_over_gc_and_time_to_target():
    from mpigc.demo import table

    text = table({"psgc": _fake("psgc", 0.05, 0.3), "gc": _fake("gc", 0.2, 0.3)}, 0.3)
    rows = {line.split()[0]: line.split() for line in text.splitlines()[2:]}
    assert rows["psgc"][2] == "4.00x" and rows["gc"][2] == "1.00x"
    assert rows["psgc"][1] == "0.0500"
    # 0.1 / k^8 <= 1e-6 * 0.3 first at k = 5 (the 5th evaluation)
    assert rows["psgc"][-1] == "0.25" and rows["gc"][-1] == "1.00"
    late = table({"gc": _fake("gc", 0.2, 0.31)}, 0.3)
    assert late.splitlines()[2].endswith("> 1.0")


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from mpigc.demo import plot

    path = tmp_path / "p.png"
    plot({"psgc": _fake("psgc", 0.05, 0.3), "gc": _fake("gc", 0.2, 0.3)}, 0.3, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
