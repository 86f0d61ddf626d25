"""The main job (``make run``): every scheme on the same problem, compared.

Logistic regression on the built-in synthetic problem with 8 workers (``mpiexec -n 9``),
cyclic load 3, bimodal stragglers (a quarter of the workers 8x slower in each iteration)
and the same seed for psgc, gc, uncoded, ignore-stragglers and allreduce with gradient
descent, then psgc and allreduce with L-BFGS. A fifth of the rows is held out
(``--validation-fraction``). Prints a table (mean iteration time, speedup over gc, final
loss, training accuracy, held-out accuracy and ROC AUC, largest relative error of a decoded
gradient, from ``--verify``, and the time to a model within 1e-6 relative of SciPy's
optimum) and writes a plot of the loss (minus that optimum) against wall-clock time per run.

    python -m mpigc.demo [--out runs/demo] [--iterations 40] [--workers 8]
"""

import argparse
import sys
from pathlib import Path

from mpigc import runner

RUN_SCHEMES = ("psgc", "gc", "uncoded", "ignore-stragglers", "allreduce")
LBFGS_SCHEMES = ("psgc", "allreduce")
LBFGS_TOL = 1e-9  # --tol of the L-BFGS runs: they stop soon after the 1e-6 target
STRAGGLERS = "bimodal:p=0.25,slowdown=8"
CHUNK_TIME = 0.02
L2 = 1e-4
HELD_OUT = 0.2  # --validation-fraction of every run
RUN_TIMEOUT = 120  # seconds per training run: a hung run must not hang the job


def train(scheme, out, iterations, workers, seed, optimizer="gd"):
    """One scheme's run of the demo; returns (summary, records)."""
    extra = {"tol": LBFGS_TOL} if optimizer == "lbfgs" else {}
    args = runner.train_args(scheme, load=3, model="logistic", stragglers=STRAGGLERS,
                             chunk_time=CHUNK_TIME, iterations=iterations, seed=seed, l2=L2,
                             optimizer=optimizer, verify=True, validation_fraction=HELD_OUT,
                             **extra)
    return runner.train(workers + 1, args, out, RUN_TIMEOUT)


def time_to_target(records, best):
    """Seconds of the loop until the first evaluation within 1e-6 relative of ``best``
    (the exact objective of ``--verify``), or None.
    """
    from mpigc.bench.convergence import to_target

    return to_target(records, best, key="objective")[1]


def table(results, best):
    """The comparison table as text (``best``: the optimum, for the time to target)."""
    gc = results["gc"][0]["mean_iteration_s"] if "gc" in results else None
    head = (f"{'run':<18} {'mean iter (s)':>13} {'speedup vs gc':>14} {'final loss':>12} "
            f"{'accuracy':>9} {'held-out acc':>12} {'AUC':>6} {'max grad err':>13} "
            f"{'to 1e-6 (s)':>12}")
    lines = [head, "-" * len(head)]
    for run, (s, records) in results.items():
        speedup = gc / s["mean_iteration_s"] if gc else float("nan")
        acc = s["accuracy"] if s["accuracy"] is not None else float("nan")
        seconds = time_to_target(records, best)
        reached = f"{seconds:.2f}" if seconds is not None else f"> {s['total_s']:.1f}"
        held = s.get("holdout") or {}
        lines.append(f"{run:<18} {s['mean_iteration_s']:>13.4f} {speedup:>13.2f}x "
                     f"{s['final_loss']:>12.6f} {acc:>9.4f} "
                     f"{held.get('accuracy', float('nan')):>12.4f} "
                     f"{held.get('roc_auc', float('nan')):>6.4f} {s['max_grad_rel_err']:>13.1e} "
                     f"{reached:>12}")
    return "\n".join(lines)


def optimum(seed=0):
    """Minimum of the demo's objective on its training rows (the rows ``--seed`` does not
    hold out; SciPy L-BFGS, NumPy model).
    """
    import numpy as np
    from scipy.optimize import minimize

    from mpigc import models
    from mpigc.data import parse_data_spec, prepare_labels
    from mpigc.data.split import holdout_mask

    source = parse_data_spec(None, model="logistic")
    X, y = source.read_rows([(0, source.n_rows)])
    keep = ~holdout_mask(0, source.n_rows, HELD_OUT, seed)
    X, y = X[keep], prepare_labels(y[keep], "logistic")
    res = minimize(lambda w: models.objective("logistic", X, y, w, L2), np.zeros(X.shape[1]),
                   jac=lambda w: models.gradient("logistic", X, y, w, L2), method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000})
    return float(res.fun)


def plot(results, best, path):
    """Suboptimality ``F(w_t) - F*`` against cumulative wall-clock time per scheme (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for scheme, (_, records) in results.items():
        t = np.cumsum([r["duration_s"] for r in records])
        gap = np.array([r["objective"] for r in records]) - best
        ax.plot(t, np.maximum(gap, 1e-16), marker=".", label=scheme)
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel("training loss - optimum")
    ax.set_yscale("log")
    ax.axhline(1e-6 * abs(best), color="gray", linestyle=":", label="1e-6 relative")
    ax.set_title(f"logistic regression, 8 workers, {STRAGGLERS}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    """Entry point of ``make run``: every scheme, the table and the plot."""
    p = argparse.ArgumentParser(prog="python -m mpigc.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--iterations", type=int, default=40)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runner.run([sys.executable, "-m", "mpigc", "warmup"], RUN_TIMEOUT)
    print(f"mpigc demo: logistic regression, {args.workers} workers, cyclic load 3, "
          f"stragglers {STRAGGLERS}, chunk time {CHUNK_TIME} s, {args.iterations} iterations, "
          f"seed {args.seed}", flush=True)
    results = {}
    runs = [(s, "gd") for s in RUN_SCHEMES] + [(s, "lbfgs") for s in LBFGS_SCHEMES]
    for scheme, optimizer in runs:
        name = scheme if optimizer == "gd" else f"{scheme}+{optimizer}"
        try:
            results[name] = train(scheme, out / name.replace("+", "-"), args.iterations,
                                  args.workers, args.seed, optimizer)
        except runner.JobFailed as exc:
            raise SystemExit(f"mpigc demo: {name}: {exc}") from None
        print(f"  {name:<18} done: mean {results[name][0]['mean_iteration_s']:.4f} "
              f"s/iteration", flush=True)
    best = optimum(args.seed)
    text = table(results, best)
    print()
    print(text)
    (out / "table.txt").write_text(text + "\n")
    print(f"\noptimum of the objective (SciPy L-BFGS on the training rows): {best:.10f}; "
          f"'to 1e-6': loop seconds until the objective is within 1e-6 relative of it "
          f"('> T': not within the run's T seconds)")
    plot(results, best, out / "loss_vs_time.png")
    print(f"\nplot: {out / 'loss_vs_time.png'}; runs: {out}/<run>/", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
