"""``make figures``: the experiments of SPEC section 8 with the simulator (PNG + CSV).

    python -m mpigc.sim.figures --out docs/figures [--trials-scale 0.2]

(a) ``a_completion_vs_ell``: exact-mode completion time against ell; psgc with optimal and
    random ordering, gc, gc-cover; cyclic and two random regular assignments.
(b) ``b_mse_vs_deadline``: deadline-mode decoding error against the deadline T, for several
    ell; psgc (optimal and random ordering) against gc (Tandon's fixed code with least
    squares for ell = 1, min-norm decode of the finished workers for ell > 1).
(c) ``c_accuracy_vs_n``: relative error of the exact decode against N, Gaussian against
    Vandermonde beta.

(d) ``d_projection_vs_n``: projected seconds per iteration from 8 to 4096 workers (strong
    scaling of one data set) for d = 1e2, 1e4, 1e6, with and without stragglers: psgc with
    the p2p decode and with ``--decode reduce``, and allreduce, through the cost model
    (:mod:`mpigc.sim.cost`) calibrated by ``docs/figures/bench_ps.json`` (``mpigc bench ps
    --json`` on this machine) with InfiniBand network defaults.

Every figure carries its setting; ``headline.json`` holds the numbers quoted in
docs/results.md (issue 5, "must show" 1 and 2; issue 15: where each design stops scaling).
"""

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from mpigc.errors import UsageError
from mpigc.schemes import build_protocol
from mpigc.sim.engine import Simulator, simulate
from mpigc.stragglers import parse_stragglers

N, LOAD = 20, 4
STRAGGLERS = "shifted-exp:shift=1,rate=1"
SEED = 0


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _setting(fig, text):
    fig.text(0.5, 0.005, text, ha="center", va="bottom", fontsize=8, color="0.3", wrap=True)


# -- (a) ---------------------------------------------------------------------------------

A_LINES = [("psgc", "optimal", "psgc, optimal order", "C0", "-o"),
           ("psgc", "random", "psgc, random order", "C0", ":s"),
           ("gc", "optimal", "gc (Tandon / Ye-Abbe)", "C3", "-^"),
           ("gc-cover", "optimal", "gc-cover", "C2", "--v")]
A_ASSIGNMENTS = [("cyclic", 0), ("regular", 1), ("regular", 2)]


def figure_a(out, trials):
    """Exact completion time against ell (rows of the CSV: one per point)."""
    model = parse_stragglers(STRAGGLERS, N, SEED)
    rows = []
    for kind, aseed in A_ASSIGNMENTS:
        for scheme, ordering, *_ in A_LINES:
            for ell in range(1, LOAD + 1):
                try:
                    p = build_protocol(scheme, N, kind, LOAD, ell, ordering, seed=aseed)
                except UsageError as exc:  # e.g. no fixed code on this assignment
                    print(f"(a) {kind}/{aseed} {scheme} ell={ell}: skipped ({exc})", file=sys.stderr)
                    continue
                c = simulate(p, model, trials, check_trials=0)["completion"]
                rows.append({"assignment": kind, "assignment_seed": aseed, "scheme": scheme,
                             "ordering": ordering, "ell": ell, "completion_mean": c.mean(),
                             "completion_sem": c.std(ddof=1) / np.sqrt(len(c)), "trials": trials})
    _write_csv(out / "a_completion_vs_ell.csv", rows)
    plt = _plt()
    fig, axes = plt.subplots(1, len(A_ASSIGNMENTS), figsize=(13, 4.4), sharey=True)
    for ax, (kind, aseed) in zip(axes, A_ASSIGNMENTS):
        for scheme, ordering, label, color, style in A_LINES:
            pts = [r for r in rows if (r["assignment"], r["assignment_seed"], r["scheme"],
                                       r["ordering"]) == (kind, aseed, scheme, ordering)]
            if pts:
                ax.errorbar([r["ell"] for r in pts], [r["completion_mean"] for r in pts],
                            [r["completion_sem"] for r in pts], fmt=style, color=color,
                            label=label, capsize=2)
        ax.set_title(f"{kind} assignment" + (f" (seed {aseed})" if kind == "regular" else ""))
        ax.set_xlabel("ell (communication parameter)")
        ax.set_xticks(range(1, LOAD + 1))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean completion time (chunk times)")
    axes[0].legend(fontsize=8)
    fig.suptitle("(a) Exact recovery: time until the PS can decode")
    _setting(fig, f"N = {N} workers, m = {N} chunks, load {LOAD}, stragglers {STRAGGLERS} "
                  f"(worker i's k-th chunk ends at k F_i), {trials} trials per point, "
                  f"error bars = standard error; gc tolerates s = {LOAD} - ell stragglers")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out / "a_completion_vs_ell.png", dpi=120)
    plt.close(fig)
    return rows


# -- (b) ---------------------------------------------------------------------------------

B_ELLS = (1, 2, 3)
B_LINES = [("psgc", "optimal", "psgc", "-"), ("psgc", "random", "psgc, random order", ":"),
           ("gc", "optimal", "gc", "--")]
MSE_FLOOR = 1e-18  # exact decodes give ~1e-31 (rounding); the log axis needs a floor


def mse_curve(protocol, model, deadlines, trials):
    """Per-trial decoding error at each deadline (decodes cached per state)."""
    sim = Simulator(protocol, seed=SEED)
    mse = np.empty((trials, len(deadlines)))
    for t in range(trials):
        reports = sim.report_times(sim.ends_from_factors(model.factors(t)))
        seen, exact = {}, sim.completion(reports)
        for k, T in enumerate(deadlines):
            state = sim.decode_point(reports, T, exact)[1]
            key = state.tobytes()
            if key not in seen:
                seen[key] = sim.decode_error(state, t)[0]
            mse[t, k] = seen[key]
    return mse


def figure_b(out, trials, exact_trials):
    """Decoding error against the deadline T; returns (rows, headline numbers)."""
    model = parse_stragglers(STRAGGLERS, N, SEED)
    deadlines = np.linspace(1.0, 28.0, 28)
    rows, headline, protocols = [], {}, {}
    for ell in B_ELLS:
        for scheme, ordering, *_ in B_LINES:
            p = build_protocol(scheme, N, "cyclic", LOAD, ell, ordering, seed=SEED)
            protocols[scheme, ordering, ell] = p
            mse = mse_curve(p, model, deadlines, trials)
            for k, T in enumerate(deadlines):
                rows.append({"scheme": scheme, "ordering": ordering, "ell": ell, "deadline": T,
                             "mse_mean": mse[:, k].mean(), "mse_median": np.median(mse[:, k]),
                             "trials": trials})
    # issue 5, must show 2: T = 1.5 x psgc's mean exact completion, ell = 1
    ell1 = {s: protocols[s, "optimal", 1] for s in ("psgc", "gc")}
    exact = {s: simulate(p, model, exact_trials, check_trials=0)["completion"].mean()
             for s, p in ell1.items()}
    T = 1.5 * exact["psgc"]
    at_T = {s: mse_curve(p, model, [T], trials)[:, 0].mean() for s, p in ell1.items()}
    headline["deadline_ell1"] = {
        "T": T, "psgc_exact_completion_mean": exact["psgc"], "mse_psgc": at_T["psgc"],
        "mse_gc": at_T["gc"], "gc_over_psgc": at_T["gc"] / at_T["psgc"] if at_T["psgc"] > 0 else None,
        "trials": trials}
    _write_csv(out / "b_mse_vs_deadline.csv", rows)
    plt = _plt()
    fig, axes = plt.subplots(1, len(B_ELLS), figsize=(13, 4.4), sharey=True)
    for ax, ell in zip(axes, B_ELLS):
        for scheme, ordering, label, style in B_LINES:
            pts = [r for r in rows if (r["scheme"], r["ordering"], r["ell"]) == (scheme, ordering, ell)]
            ax.semilogy([r["deadline"] for r in pts],
                        [max(r["mse_mean"], MSE_FLOOR) for r in pts], style,
                        color="C3" if scheme == "gc" else "C0", label=label)
        if ell == 1:
            ax.axvline(T, color="0.5", lw=0.8)
            ax.text(T, 1e-9, f" T = 1.5 x psgc exact\n = {T:.2f}", fontsize=7, color="0.3")
        ax.set_title(f"ell = {ell}")
        ax.set_xlabel("deadline T (chunk times)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("mean ||g_hat - g||^2 / ||g||^2")
    axes[0].legend(fontsize=8)
    fig.suptitle("(b) Approximate recovery at a deadline: decoding error")
    _setting(fig, f"N = {N}, cyclic load {LOAD}, stragglers {STRAGGLERS}, {trials} trials per "
                  f"point, Gaussian chunk gradients (d = 64); values below {MSE_FLOOR:g} "
                  f"(exact decodes: rounding only) drawn at the floor; gc ell = 1: Tandon's "
                  f"fixed code, least-squares decode")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out / "b_mse_vs_deadline.png", dpi=120)
    plt.close(fig)
    return rows, headline


# -- (c) ---------------------------------------------------------------------------------

C_NS = (10, 20, 30, 40, 60, 80)
C_ELLS = [("ell = 3", lambda n: 3), ("ell = 6", lambda n: 6), ("ell = N/4", lambda n: n // 4),
          ("ell = N/2", lambda n: n // 2)]


def figure_c(out, trials):
    """Relative error of exact decodes against N, Gaussian vs Vandermonde beta."""
    rows = []
    for n in C_NS:
        model = parse_stragglers(STRAGGLERS, n, SEED)
        for name, rule in C_ELLS:
            ell = rule(n)
            for beta in ("gaussian", "vandermonde"):
                p = build_protocol("psgc", n, "cyclic", min(n, ell + 2), ell, beta=beta, seed=SEED)
                mse = simulate(p, model, trials, check_trials=trials, seed=SEED)["mse"]
                rel = np.sqrt(mse)
                rows.append({"workers": n, "ell_rule": name, "ell": ell, "load": min(n, ell + 2),
                             "beta": beta, "rel_err_median": np.median(rel),
                             "rel_err_max": rel.max(), "trials": trials})
    _write_csv(out / "c_accuracy_vs_n.csv", rows)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for c, (name, _) in enumerate(C_ELLS):
        for beta, style in (("gaussian", "-o"), ("vandermonde", "--s")):
            pts = [r for r in rows if (r["ell_rule"], r["beta"]) == (name, beta)]
            ax.semilogy([r["workers"] for r in pts], [r["rel_err_median"] for r in pts], style,
                        color=f"C{c}", label=f"{name}, {beta}")
    ax.set_xlabel("N (workers)")
    ax.set_ylabel("median ||g_hat - g|| / ||g|| (exact decode)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("(c) Numerical accuracy of decoding: Gaussian vs Vandermonde beta")
    _setting(fig, f"psgc, exact mode, cyclic, load = ell + 2, stragglers {STRAGGLERS}, {trials} "
                  f"trials per point; Vandermonde nodes equispaced in [-1, 1]")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out / "c_accuracy_vs_n.png", dpi=120)
    plt.close(fig)
    return rows


# -- (d) ---------------------------------------------------------------------------------

D_DIMS = (100, 10_000, 1_000_000)
D_WORKERS = tuple(2**k for k in range(3, 13))   # 8 .. 4096
D_STRAGGLERS = ("none", STRAGGLERS)
# The fixed data set of the strong-scaling projection: streamed once per iteration, its
# compute time on one core is DATASET_BYTES / the measured read bandwidth.
DATASET_BYTES = 80e9
# `mpigc bench ps --json` of this machine, kept beside the figures
DEFAULT_COST_MODEL = Path(__file__).resolve().parents[2] / "docs" / "figures" / "bench_ps.json"
D_LINES = [("psgc", "p2p", "psgc, p2p decode", "C0", "-o"),
           ("psgc", "reduce", "psgc, --decode reduce", "C2", "-s"),
           ("allreduce", "p2p", "allreduce", "C3", "-^")]


def figure_d(out, trials, cost_file):
    """Projected strong scaling; returns (rows, where each curve is fastest)."""
    from mpigc.sim.cost import CostModel, iteration_seconds

    cost = CostModel.from_file(cost_file)
    one_core = DATASET_BYTES / cost.read_bytes_per_s
    rows = []
    for d in D_DIMS:
        for spec in D_STRAGGLERS:
            for scheme, via, *_ in D_LINES:
                for n in D_WORKERS:
                    p = build_protocol(scheme, n, "cyclic", None, 1, decode_via=via, seed=SEED)
                    model = parse_stragglers(spec, n, SEED)
                    t = iteration_seconds(p, model, trials, cost, d, one_core / n)
                    rows.append({"d": d, "stragglers": spec, "scheme": scheme, "decode": via,
                                 "workers": n, "iteration_s_mean": float(np.mean(t)),
                                 "chunk_time_s": one_core / n, "trials": trials})
    _write_csv(out / "d_projection_vs_n.csv", rows)
    best = {}
    for d in D_DIMS:
        for spec in D_STRAGGLERS:
            for scheme, via, *_ in D_LINES:
                pts = [r for r in rows if (r["d"], r["stragglers"], r["scheme"], r["decode"])
                       == (d, spec, scheme, via)]
                top = min(pts, key=lambda r: r["iteration_s_mean"])
                best[f"{scheme}/{via}/d={d}/{spec}"] = {
                    "fastest_at_workers": top["workers"], "iteration_s": top["iteration_s_mean"],
                    "at_4096_s": pts[-1]["iteration_s_mean"]}
    plt = _plt()
    fig, axes = plt.subplots(len(D_STRAGGLERS), len(D_DIMS), figsize=(14, 8), sharex=True)
    for r_i, spec in enumerate(D_STRAGGLERS):
        for c_i, d in enumerate(D_DIMS):
            ax = axes[r_i, c_i]
            for scheme, via, label, color, style in D_LINES:
                pts = [r for r in rows if (r["d"], r["stragglers"], r["scheme"], r["decode"])
                       == (d, spec, scheme, via)]
                ax.loglog([r["workers"] for r in pts], [r["iteration_s_mean"] for r in pts],
                          style, color=color, label=label, ms=4)
            ax.loglog(D_WORKERS, [one_core / n for n in D_WORKERS], "k:", lw=0.8,
                      label="compute / N (ideal)")
            ax.set_title(f"d = {d:g}, stragglers {spec}", fontsize=9)
            ax.set_xscale("log", base=2)
            ax.grid(alpha=0.3, which="both")
            if r_i == len(D_STRAGGLERS) - 1:
                ax.set_xlabel("workers N")
            if c_i == 0:
                ax.set_ylabel("projected seconds per iteration")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("(d) Projected strong scaling: where the parameter server stops scaling")
    _setting(fig, f"cost model from {cost_file} (mpigc bench ps on this machine), network "
                  f"latency {cost.latency_s:g} s, bandwidth {cost.bandwidth_bytes_per_s:g} B/s; "
                  f"data set {DATASET_BYTES / 1e9:g} GB, {one_core:.2f} s on one core; psgc "
                  f"cyclic load 3, ell = 1; {trials} trials per point")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(out / "d_projection_vs_n.png", dpi=110)
    plt.close(fig)
    return rows, best


def main(argv=None):
    """Entry point of ``make figures``: every figure and its CSV."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/figures")
    ap.add_argument("--cost-model", default=str(DEFAULT_COST_MODEL),
                    help="mpigc bench ps --json output for figure (d)")
    ap.add_argument("--only", default=None, choices=("d",),
                    help="make figure (d) only (headline.json is not rewritten)")
    ap.add_argument("--trials-scale", type=float, default=1.0,
                    help="multiply every trial count (smaller: faster, noisier)")
    args = ap.parse_args(argv)
    if not args.trials_scale > 0:
        ap.error(f"--trials-scale must be > 0, got {args.trials_scale}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def n(trials):
        return max(5, int(round(trials * args.trials_scale)))

    start = time.perf_counter()
    if args.only == "d":
        figure_d(out, n(20), args.cost_model)
        return 0
    a = figure_a(out, n(1000))
    print(f"(a) done in {time.perf_counter() - start:.0f} s", flush=True)
    _, headline = figure_b(out, n(200), n(1000))
    print(f"(b) done in {time.perf_counter() - start:.0f} s", flush=True)
    figure_c(out, n(20))
    print(f"(c) done in {time.perf_counter() - start:.0f} s", flush=True)
    _, headline["projection"] = figure_d(out, n(20), args.cost_model)
    print(f"(d) done in {time.perf_counter() - start:.0f} s", flush=True)
    ratios = {}
    for ell in range(1, LOAD + 1):
        got = {r["scheme"]: r["completion_mean"] for r in a
               if (r["assignment"], r["ordering"], r["ell"]) == ("cyclic", "optimal", ell)}
        ratios[f"ell{ell}"] = {**got, "gc_over_psgc": got["gc"] / got["psgc"]}
    headline["exact_cyclic"] = ratios
    headline["setting"] = {"workers": N, "load": LOAD, "stragglers": STRAGGLERS, "seed": SEED}
    (out / "headline.json").write_text(json.dumps(headline, indent=2) + "\n")
    print(json.dumps(headline, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
