"""``mpigc bench scaling``: strong scaling of one fixed problem over rank counts.

Each rank count runs ``mpigc train`` (psgc without stragglers, and allreduce) on the same
data; the median iteration time of each run gives speedup and parallel efficiency against
the smallest rank count. psgc runs at its default load: without stragglers its trigger
fires after one chunk per worker whatever the load (optimal ordering), so the load only
changes what is read at start-up. Points with more ranks than cores are run but flagged
``oversubscribed`` and left out of the efficiency claims: there the ranks share cores and
the figure measures the machine, not mpigc.
"""

import csv
import json
from pathlib import Path

from mpigc import runner
from mpigc.errors import UsageError, require
from mpigc.runtime import launch


def parse_ranks(text):
    """'2,3,5,9' -> [2, 3, 5, 9]; every count >= 2 (one PS and at least one worker)."""
    try:
        ranks = sorted({int(r) for r in text.split(",") if r.strip()})
    except ValueError:
        raise UsageError(f"--ranks must be comma-separated integers, got {text!r}") from None
    require(ranks and ranks[0] >= 2, f"--ranks needs counts >= 2 (a PS and a worker), got {text!r}")
    return ranks


def run_dir(root, scheme, n):
    """The --out directory of one point: ROOT/<scheme>-ranks-<n>."""
    return Path(root) / f"{scheme}-ranks-{n}"


def run_point(launcher, scheme, n_ranks, data, iterations, root):
    """Train ``scheme`` on ``n_ranks`` ranks into :func:`run_dir`; returns that directory."""
    out = run_dir(root, scheme, n_ranks)
    args = runner.train_args(scheme, data=data, iterations=iterations, stragglers="none")
    runner.train(n_ranks, args, out, timeout=1800, launcher=launcher)
    return out


def collect(root, cores=None):
    """Rows (one per scheme and rank count) from the summary.json files under ``root``."""
    cores = launch.available_cores() if cores is None else cores
    rows = []
    for summary in sorted(Path(root).glob("*-ranks-*/summary.json")):
        s = json.loads(summary.read_text())
        scheme, n = summary.parent.name.rsplit("-ranks-", 1)
        rows.append({"scheme": scheme, "ranks": int(n), "workers": int(n) - 1,
                     "median_iteration_s": s["median_iteration_s"],
                     "oversubscribed": int(n) > cores})
    require(rows, f"no runs found under {root} (expected <scheme>-ranks-<n>/summary.json)")
    for scheme in {r["scheme"] for r in rows}:
        mine = sorted((r for r in rows if r["scheme"] == scheme), key=lambda r: r["ranks"])
        base = mine[0]
        for r in mine:
            r["speedup"] = base["median_iteration_s"] / r["median_iteration_s"]
            # efficiency over worker counts: the PS rank does no gradient work
            r["efficiency"] = r["speedup"] * base["workers"] / r["workers"]
    return sorted(rows, key=lambda r: (r["scheme"], r["ranks"]))


def write_outputs(rows, root):
    """Write ``scaling.csv`` and ``scaling.png`` into ``root``."""
    root = Path(root)
    with open(root / "scaling.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is optional (pip install mpigc[plot])
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    schemes = sorted({r["scheme"] for r in rows})
    for scheme in schemes:
        mine = [r for r in rows if r["scheme"] == scheme]
        ax.plot([r["workers"] for r in mine], [r["speedup"] for r in mine], "o-", label=scheme)
        for r in mine:
            if r["oversubscribed"]:
                ax.plot(r["workers"], r["speedup"], "x", color="red", ms=10)
    workers = sorted({r["workers"] for r in rows})
    ax.plot(workers, [w / workers[0] for w in workers], "k--", label="ideal")
    ax.set_xlabel("workers (ranks - 1)")
    ax.set_ylabel("speedup of the median iteration")
    ax.set_title("strong scaling (red x: more ranks than cores)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(root / "scaling.png", dpi=120)
    plt.close(fig)


def main(args):
    """Entry point of ``mpigc bench scaling``; returns the exit status."""
    root = Path(args.collect or args.out or "runs/scaling")
    if not args.collect:
        ranks = parse_ranks(args.ranks)
        schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
        launcher = args.launcher or runner.default_launcher()
        require("{n}" in launcher, f"--launcher must contain {{n}}, got {launcher!r}")
        root.mkdir(parents=True, exist_ok=True)
        try:
            for n in ranks:
                for scheme in schemes:
                    run_point(launcher, scheme, n, args.data, args.iterations, root)
        except runner.JobFailed as exc:
            raise SystemExit(f"mpigc bench scaling: {exc}") from None
    rows = collect(root)
    write_outputs(rows, root)
    if args.json:
        print(json.dumps({"runs": rows, "csv": str(root / "scaling.csv"),
                          "plot": str(root / "scaling.png"), "cores": launch.available_cores()}))
    else:
        print(f"{'scheme':<12}{'ranks':>6}{'median s':>12}{'speedup':>9}{'eff.':>7}")
        for r in rows:
            flag = "  (oversubscribed)" if r["oversubscribed"] else ""
            print(f"{r['scheme']:<12}{r['ranks']:>6}{r['median_iteration_s']:>12.4f}"
                  f"{r['speedup']:>9.2f}{r['efficiency']:>7.2f}{flag}")
    return 0

