"""Must-show 2 of the runtime issue: psgc against gc and uncoded under bimodal stragglers.

8 workers, cyclic load 3, ell 1, a quarter of the workers 8x slower in each iteration,
chunk time 0.02 s, 30 iterations, one run of each scheme with the same seed.
"""

from test_runtime_helpers import train

COMMON = ["--stragglers", "bimodal:p=0.25,slowdown=8", "--chunk-time", 0.02,
          "--iterations", 30, "--seed", 0]


def test_psgc_is_at_least_twice_as_fast_as_gc(tmp_path):
    psgc, _ = train(8, ["--scheme", "psgc", "--load", 3, "--ell", 1] + COMMON, tmp_path / "p",
                    timeout=150)
    gc, _ = train(8, ["--scheme", "gc", "--load", 3, "--ell", 1] + COMMON, tmp_path / "g",
                  timeout=150)
    uncoded, _ = train(8, ["--scheme", "uncoded"] + COMMON, tmp_path / "u", timeout=150)
    t = {s["scheme"]: s["mean_iteration_s"] for s in (psgc, gc, uncoded)}
    assert t["psgc"] <= 0.5 * t["gc"], t
    assert t["psgc"] <= 0.6 * t["uncoded"], t
    # the same exact gradients, hence the same model
    assert abs(psgc["final_loss"] - gc["final_loss"]) <= 1e-9 * gc["final_loss"]
    assert abs(psgc["final_loss"] - uncoded["final_loss"]) <= 1e-9 * uncoded["final_loss"]
