"""``mpigc bench stragglers``: psgc against gc and uncoded under injected stragglers.

One run of each scheme with the same seed (8 workers, cyclic load 3, ell 1, bimodal
stragglers: a quarter of the workers 8x slower in each iteration, chunk time 0.02 s), then
the psgc run replayed through the simulator: ``overhead_ratio`` is the measured time over
what the protocol alone would take with the measured chunk times. Targets (runtime and
simulator issues): psgc's mean iteration <= 0.5 x gc's and <= 0.6 x uncoded's;
overhead_ratio <= 1.15. The runs are dominated by the injected delays, so the ratios are
meaningful even with more ranks than cores; the overhead ratio is not (see its note).
"""

import json
import tempfile
from pathlib import Path

from mpigc.bench import jobs
from mpigc.errors import require
from mpigc.runtime import launch
from mpigc.schemes import SCHEMES

TARGETS = {"psgc_over_gc": 0.5, "psgc_over_uncoded": 0.6, "overhead_ratio": 1.15}


def scheme_args(scheme, args):
    common = ["--stragglers", args.stragglers, "--chunk-time", args.chunk_time,
              "--iterations", args.iterations, "--seed", args.seed, "--scheme", scheme]
    if not SCHEMES[scheme].unit_load:
        common += ["--load", args.load, "--ell", 1]
    return common


def measure(args, root):
    from mpigc.sim.replay import replay

    runs = {}
    for scheme in ("psgc", "gc", "uncoded"):
        summary, _ = jobs.train(args.workers + 1, scheme_args(scheme, args), root / scheme,
                                timeout=600)
        runs[scheme] = summary
    mean = {s: runs[s]["mean_iteration_s"] for s in runs}
    overhead = replay(root / "psgc")["overhead_ratio"]
    result = {
        "workers": args.workers, "load": args.load, "stragglers": args.stragglers,
        "chunk_time": args.chunk_time, "iterations": args.iterations, "seed": args.seed,
        "ranks": args.workers + 1, "cores": launch.available_cores(),
        "mean_iteration_s": mean,
        "psgc_over_gc": mean["psgc"] / mean["gc"],
        "psgc_over_uncoded": mean["psgc"] / mean["uncoded"],
        "overhead_ratio": overhead,
        "final_loss": {s: runs[s]["final_loss"] for s in runs},
        "targets": TARGETS,
    }
    result["meets"] = {k: result[k] is not None and result[k] <= v for k, v in TARGETS.items()}
    return result


def main(args):
    require(args.workers >= 2, f"--workers must be at least 2, got {args.workers}")
    require(1 <= args.load <= args.workers, f"--load must be between 1 and --workers "
            f"({args.workers}), got {args.load}")
    require(args.iterations >= 1, f"--iterations must be at least 1, got {args.iterations}")
    try:
        if args.out:
            root = Path(args.out)
            root.mkdir(parents=True, exist_ok=True)
            result = measure(args, root)
        else:
            with tempfile.TemporaryDirectory(prefix="mpigc-bench-") as tmp:
                result = measure(args, Path(tmp))
    except jobs.JobFailed as exc:
        raise SystemExit(f"mpigc bench stragglers: {exc}") from None
    if args.json:
        print(json.dumps(result))
        return 0
    for s, t in result["mean_iteration_s"].items():
        print(f"{s:<8} mean iteration {t:.4f} s")
    for key, target in TARGETS.items():
        verdict = "ok" if result["meets"][key] else "MISSED"
        print(f"{key:<18} {result[key]:.3f}  (target <= {target}: {verdict})")
    return 0
