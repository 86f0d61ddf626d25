"""Spark MLlib's warm LogisticRegression fit on an mpigc ``.npz`` file (for
``mpigc bench convergence``; run by an interpreter that has pyspark and a JDK).

    python -m mpigc.bench.spark_fit DATA.npz L2 F_STAR [--cores 2]

Same objective as ``mpigc train --model logistic --l2 L2`` on the same rows: mean log-loss
plus ``L2/2 |w|^2`` on every coefficient (``regParam = L2``, ``elasticNetParam = 0``,
``standardization = False``, so the penalty is on the raw coefficients; Spark still
optimizes in std-scaled coordinates), no intercept. (Spark drops a zero-variance column,
a ones column included, from its scaled problem: the data must have none.) One fit warms
the JVM and gives the objective history; the iterations to the
target ``F* (1 + 1e-6)`` are counted there; then a fit with exactly that many iterations is
timed, best of three. Prints one JSON object.
"""

import argparse
import json
import time

import numpy as np

RELATIVE_TARGET = 1e-6


def main(argv=None):
    """Fit the data with Spark MLlib and print the JSON object (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m mpigc.bench.spark_fit")
    p.add_argument("data")
    p.add_argument("l2", type=float)
    p.add_argument("f_star", type=float)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)

    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import SparkSession

    with np.load(args.data) as z:
        X, y = z["X"], z["y"]
    spark = (SparkSession.builder.master(f"local[{args.cores}]")
             .config("spark.driver.memory", "6g").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    rows = [(float(label > 0), Vectors.dense(x)) for x, label in zip(X, y)]
    df = spark.createDataFrame(rows, ["label", "features"]).repartition(args.cores).cache()
    df.count()

    def fit(max_iter, tol):
        lr = LogisticRegression(maxIter=max_iter, regParam=args.l2, elasticNetParam=0.0,
                                standardization=False, fitIntercept=False, tol=tol)
        start = time.perf_counter()
        model = lr.fit(df)
        return model, time.perf_counter() - start

    model, _ = fit(200, 1e-12)
    history = list(model.summary.objectiveHistory)
    target = args.f_star + RELATIVE_TARGET * abs(args.f_star)
    # objectiveHistory[0] is the start; entry k is the objective after iteration k
    reached = next((k for k, f in enumerate(history) if f <= target), None)
    iterations = reached if reached is not None else len(history) - 1
    times = [fit(max(iterations, 1), 0.0)[1] for _ in range(args.repeat)]
    print(json.dumps({"spark_version": spark.version, "cores": args.cores,
                      "iterations_to_target": iterations, "reached": reached is not None,
                      "warm_fit_s": min(times), "warm_fit_s_runs": times,
                      "final_relative_gap": (history[-1] - args.f_star) / abs(args.f_star)}))
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
