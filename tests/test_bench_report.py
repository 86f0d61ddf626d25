import statistics

from mpigc.bench.report import medians, meets, verdict, with_runs


def test_with_runs_reports_the_median_and_every_run():
    runs = (3.0, 1.0, 2.0, 10.0)
    assert with_runs("t_s", runs) == {"t_s": statistics.median(runs), "t_s_runs": list(runs)}
    assert medians({"a": [1.0, 5.0, 2.0], "b": [4.0]}) == {"a": 2.0, "b": 4.0}


def test_a_target_is_met_on_its_side_only():
    assert meets(0.5, "<=", 0.5) and not meets(0.51, "<=", 0.5)
    assert meets(4.0, ">=", 4.0) and not meets(3.9, ">=", 4.0)
    assert not meets(None, "<=", 1.0) and not meets(None, ">=", 1.0)
    assert (verdict(True), verdict(False)) == ("ok", "MISSED")
