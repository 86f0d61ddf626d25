"""Command-line front end: ``mpigc train | predict | simulate | bench | convert | warmup``.

Every subcommand validates its input before any MPI work starts. Bad input becomes one
line on stderr (``mpigc: error: ...``) and exit status 2, printed by rank 0 only; the
other ranks exit with the same status, so no rank is left waiting for another.
"""

import argparse
import gc
import importlib
import os
import sys

from mpigc import __version__
from mpigc.errors import EXIT_USAGE, UsageError
from mpigc.runtime import launch

CONVERGENCE_CONFIGS = ("psgc+lbfgs", "psgc+nesterov", "gc+gd", "allreduce+lbfgs",
                       "uncoded+lbfgs")

# NumPy (and so mpigc.config, which reads the scheme names from mpigc.schemes) is imported
# only after launch.configure() has limited the BLAS threads: see build_parser.


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting, and takes
    no abbreviations (``--tol`` must never silently mean another option).
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(message)


def add_protocol_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``train`` and ``simulate``: the scheme and its settings."""
    from mpigc import config

    config.add_options(p.add_argument_group(config.PROTOCOL), group=config.PROTOCOL)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand (``train``'s options come from :mod:`mpigc.config`)."""
    from mpigc import config

    parser = _Parser(prog="mpigc", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mpigc {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="distributed training (run under mpiexec)")
    add_protocol_options(t)
    config.add_options(t, group="train")

    _add_predict(sub.add_parser("predict", help="apply a saved model to a data set (no MPI)"))

    s = sub.add_parser("simulate", help="discrete-event simulation of the protocol (no MPI)")
    add_protocol_options(s)
    s.add_argument("--workers", type=int, default=20, metavar="N")
    s.add_argument("--trials", type=int, default=1000, metavar="K")
    s.add_argument("--replay", default=None, metavar="DIR")
    s.add_argument("--json", action="store_true")
    c = s.add_argument_group("cost model (seconds instead of chunk times)")
    c.add_argument("--cost-model", default=None, metavar="FILE",
                   help="the JSON of 'mpigc bench ps --json': predict seconds per iteration")
    c.add_argument("--chunk-time", type=float, default=None, metavar="SECONDS",
                   help="seconds of one chunk at factor 1 (needed with --cost-model)")
    c.add_argument("--dim", type=int, default=100, metavar="D", help="model dimension d")
    c.add_argument("--latency", type=float, default=None, metavar="SECONDS",
                   help="network latency per message (default 2e-6: InfiniBand)")
    c.add_argument("--bandwidth", type=float, default=None, metavar="BYTES_PER_S",
                   help="network bandwidth per link (default 12.5e9: 100 Gb/s InfiniBand)")
    c.add_argument("--decode", default="p2p", choices=("p2p", "reduce"),
                   help="how the vectors reach the PS (as mpigc train --decode)")

    _add_bench(sub.add_parser("bench", help="benchmarks"))
    _add_convert(sub.add_parser("convert", help="any data spec (compressed svmlight too) to "
                                                "the uncompressed npz layout workers map"))
    sub.add_parser("warmup", help="compile every Numba kernel into the cache")
    return parser


def _add_bench(b):
    bsub = b.add_subparsers(dest="bench", parser_class=_Parser)
    for add in (_add_bench_kernels_scaling, _add_bench_stragglers, _add_bench_convergence,
                _add_bench_data_ps):
        add(bsub)


def _add_bench_kernels_scaling(bsub):
    bk = bsub.add_parser("kernels", help="Numba kernels against NumPy/SciPy")
    bk.add_argument("--json", action="store_true")
    bk.add_argument("--rows", type=int, default=None)
    bk.add_argument("--cols", type=int, default=None)
    bk.add_argument("--repeat", type=int, default=10)
    bs = bsub.add_parser("scaling", help="strong scaling over rank counts")
    bs.add_argument("--ranks", default="2,3,5,9")
    bs.add_argument("--json", action="store_true")
    bs.add_argument("--out", default=None, metavar="DIR")
    bs.add_argument("--iterations", type=int, default=20)
    bs.add_argument("--data", default="synthetic:n=120000,d=200,seed=1", metavar="SPEC",
                    help="the fixed problem (strong scaling: the same at every rank count)")
    bs.add_argument("--schemes", default="psgc,allreduce")
    bs.add_argument("--launcher", default=None, metavar="TEMPLATE",
                    help="command prefix with {n} for the rank count (default: mpiexec -n {n}; "
                         "under Slurm: 'srun --mpi=pmi2 -n {n}')")
    bs.add_argument("--collect", default=None, metavar="DIR",
                    help="only aggregate runs already in DIR/<scheme>-ranks-<n>/ (from a Slurm "
                         "sweep)")


def _add_bench_stragglers(bsub):
    bt = bsub.add_parser("stragglers", help="psgc vs gc and uncoded under stragglers, and "
                                            "the runtime's overhead over the protocol")
    bt.add_argument("--json", action="store_true")
    bt.add_argument("--workers", type=int, default=8)
    bt.add_argument("--load", type=int, default=3)
    bt.add_argument("--stragglers", default="bimodal:p=0.25,slowdown=8")
    bt.add_argument("--chunk-time", type=float, default=0.02)
    bt.add_argument("--iterations", type=int, default=30)
    bt.add_argument("--seed", type=int, default=0)
    bt.add_argument("--repeat", type=int, default=3, metavar="K",
                    help="runs of each scheme (interleaved); medians are reported")
    bt.add_argument("--out", default=None, metavar="DIR", help="keep the runs in DIR")


def _add_bench_convergence(bsub):
    bc = bsub.add_parser("convergence", help="time and evaluations to 1e-6 relative "
                                             "suboptimality, per scheme and optimizer")
    bc.add_argument("--json", action="store_true")
    bc.add_argument("--problems", default="breast_cancer,ill_conditioned,diabetes,spark",
                    metavar="LIST", help="breast_cancer, ill_conditioned, diabetes, spark")
    bc.add_argument("--configs", default=",".join(CONVERGENCE_CONFIGS), metavar="LIST",
                    help="SCHEME+OPTIMIZER pairs")
    bc.add_argument("--workers", type=int, default=8)
    bc.add_argument("--load", type=int, default=3)
    bc.add_argument("--stragglers", default="bimodal:p=0.25,slowdown=8")
    bc.add_argument("--chunk-time", type=float, default=0.02)
    bc.add_argument("--seed", type=int, default=0)
    bc.add_argument("--first-order-budget", type=int, default=600, metavar="K",
                    help="evaluations of gd and nesterov (their --iterations)")
    bc.add_argument("--lbfgs-budget", type=int, default=200, metavar="K",
                    help="L-BFGS steps (--iterations; a step takes one or more evaluations)")
    bc.add_argument("--rows", type=int, default=None, metavar="N",
                    help="rows of the synthetic problems (default 100000 and 200000)")
    bc.add_argument("--spark-python", default=None, metavar="PYTHON",
                    help="an interpreter with pyspark (and a JDK on PATH): Spark MLlib is "
                         "then measured on the spark problem in the same run")
    bc.add_argument("--out", default=None, metavar="DIR", help="keep the runs in DIR")


def _add_bench_data_ps(bsub):
    bd = bsub.add_parser("data", help="the svmlight parser against scikit-learn's, and the "
                                      "start-up of a job on synthetic and svmlight data")
    bd.add_argument("--json", action="store_true")
    bd.add_argument("--rows", type=int, default=200_000)
    bd.add_argument("--cols", type=int, default=50_000)
    bd.add_argument("--nnz", type=int, default=40, help="entries per row")
    bd.add_argument("--repeat", type=int, default=3, metavar="K",
                    help="rounds of every measurement (interleaved); medians are reported")
    bd.add_argument("--ranks", type=int, default=9, help="ranks of the start-up runs")

    bp = bsub.add_parser("ps", help="the parameter server's costs: progress reports, decode")
    bp.add_argument("--json", action="store_true")
    bp.add_argument("--cases", default=None, metavar="N:d:ell,...",
                    help="decode cases (default: mpigc.bench.ps.DEFAULT_CASES, with "
                         "256:100000:1)")
    bp.add_argument("--repeat", type=int, default=5, metavar="K",
                    help="rounds per decode case (best rate, median tail)")

    bx = bsub.add_parser("decode", help="--decode p2p against --decode reduce, interleaved, "
                                        "over N, d and ell")
    bx.add_argument("--json", action="store_true")
    bx.add_argument("--cases", default=None, metavar="N:d:ell,...",
                    help="default: mpigc.bench.decode.DEFAULT_CASES (N 4, 8, 16; d 1e4-1e6)")
    bx.add_argument("--pairs", type=int, default=7, metavar="K",
                    help="timed pairs of blocks (p2p, reduce) per case; medians are reported")
    bx.add_argument("--block", type=int, default=5, metavar="K",
                    help="iterations per block (a block's time is their median)")


def _add_convert(c):
    c.add_argument("input", metavar="IN", help="a --data spec, or FILE.svm.gz/.bz2/.xz")
    c.add_argument("output", metavar="OUT.npz")


def _add_predict(p):
    p.add_argument("model", metavar="MODEL", help="model.npz of mpigc train --out DIR")
    p.add_argument("data", metavar="DATA", help="a --data spec of mpigc train")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="write the predictions to FILE (.npy or .csv)")
    p.add_argument("--proba", action="store_true",
                   help="probabilities of the positive class (logistic models)")


# subcommand -> "module:function" taking the parsed arguments, returning an exit status
_HANDLERS = {
    "train": "mpigc.runtime.train:main",
    "predict": "mpigc.predict:main",
    "simulate": "mpigc.sim.cli:main",
    ("bench", "kernels"): "mpigc.bench.kernels:main",
    ("bench", "scaling"): "mpigc.bench.scaling:main",
    ("bench", "stragglers"): "mpigc.bench.stragglers:main",
    ("bench", "convergence"): "mpigc.bench.convergence:main",
    ("bench", "data"): "mpigc.bench.data:main",
    ("bench", "ps"): "mpigc.bench.ps:main",
    ("bench", "decode"): "mpigc.bench.decode:main",
    "convert": "mpigc.data.convert:main",
    "warmup": "mpigc.kernels:warmup_main",
}


def _handler(args):
    key = args.command if args.command != "bench" else ("bench", args.bench)
    if key not in _HANDLERS:
        raise UsageError("missing subcommand (try 'mpigc --help')")
    module, func = _HANDLERS[key].split(":")
    return getattr(importlib.import_module(module), func)


def main(argv=None):
    """Run ``mpigc ARGV``; returns the exit status (2 for bad input, on every rank)."""
    launch.configure()
    rank = launch.launcher_rank()
    try:
        args = build_parser().parse_args(argv)
        return int(_handler(args)(args) or 0)
    except UsageError as exc:
        if rank == 0:
            print(f"mpigc: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout went to a reader that stopped early (`... --json | head`): not an error
        # worth a traceback; silence the interpreter's final flush as the Python docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def console():
    """The ``mpigc`` command (and ``python -m mpigc``): :func:`main`, then a faster exit.

    ``gc.freeze()`` before the interpreter's teardown: its last garbage collection would
    otherwise walk every object of NumPy, SciPy and mpigc in every rank (docs/results.md,
    "Lanczos without ARPACK, a faster exit"). The teardown itself (atexit, MPI_Finalize,
    closing files) runs as before. Not in :func:`main`, which tests call in-process.
    """
    status = main()
    gc.freeze()
    return status


if __name__ == "__main__":
    sys.exit(console())
