"""Command-line front end: ``mpigc train | simulate | bench | warmup``.

Every subcommand validates its input before any MPI work starts. Bad input becomes one
line on stderr (``mpigc: error: ...``) and exit status 2, printed by rank 0 only; the
other ranks exit with the same status, so no rank is left waiting for another.
"""

import argparse
import importlib
import os
import sys

from mpigc import __version__
from mpigc.errors import UsageError
from mpigc.runtime import launch

SCHEME_NAMES = ("psgc", "gc", "gc-cover", "ignore-stragglers", "uncoded", "allreduce")


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(message)


def add_protocol_options(p):
    """Options shared by ``train`` and ``simulate``: the scheme and its settings."""
    g = p.add_argument_group("protocol")
    g.add_argument("--scheme", default="psgc", choices=SCHEME_NAMES)
    g.add_argument("--assignment", default="cyclic", metavar="cyclic|frc|regular|FILE")
    g.add_argument("--load", type=int, default=None, metavar="DELTA",
                   help="chunks per worker (default 3; 1 for uncoded/ignore-stragglers/allreduce)")
    g.add_argument("--ell", type=int, default=1, metavar="L", help="communication parameter")
    g.add_argument("--ordering", default="optimal", metavar="natural|random|optimal|FILE")
    g.add_argument("--beta", default="gaussian", choices=("gaussian", "vandermonde"))
    g.add_argument("--tolerance", type=int, default=None, metavar="S",
                   help="stragglers tolerated by gc/ignore-stragglers (default: min replication - ell)")
    g.add_argument("--deadline", type=float, default=None, metavar="T",
                   help="approximate mode: decode at time T after the iteration starts "
                        "(seconds in train; chunk times in simulate)")
    g.add_argument("--stragglers", default="none", metavar="SPEC",
                   help="none | exp:mean=M | shifted-exp:shift=A,rate=R | pareto:alpha=A | "
                        "bimodal:p=P,slowdown=K | persistent:frac=F,slowdown=K | fail:p=P | "
                        "trace:FILE, joined with '+'")
    g.add_argument("--seed", type=int, default=0)


def build_parser():
    parser = _Parser(prog="mpigc", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mpigc {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="distributed training (run under mpiexec)")
    add_protocol_options(t)
    t.add_argument("--data", default=None, metavar="SPEC",
                   help="synthetic:n=ROWS,d=COLS[,density=F][,seed=S] | FILE.npz | "
                        "FILE.svm/.libsvm/.txt (default: synthetic:n=20000,d=100)")
    t.add_argument("--model", default="logistic", choices=("logistic", "linear"))
    t.add_argument("--chunk-time", type=float, default=0.0, metavar="SECONDS",
                   help="nominal chunk time; straggler factors multiply max(this, compute time)")
    t.add_argument("--iterations", type=int, default=50, metavar="K")
    t.add_argument("--optimizer", default="gd", choices=("gd", "nesterov"))
    t.add_argument("--lr", default="auto", metavar="ETA|auto")
    t.add_argument("--l2", type=float, default=1e-4, metavar="LAMBDA")
    t.add_argument("--out", default=None, metavar="DIR")
    t.add_argument("--verify", action="store_true")
    t.add_argument("--resume", default=None, metavar="DIR",
                   help="continue from DIR/checkpoint.npz (same configuration required)")
    t.add_argument("--checkpoint-every", type=int, default=0, metavar="K",
                   help="checkpoint every K iterations (0: only on SIGUSR1/SIGTERM)")
    t.add_argument("--faults", default=None, metavar="SPEC",
                   help="inject faults: stall:worker=W,seconds=S[,iteration=I|A-B] | "
                        "fail:worker=W[,iteration=...] | nan:worker=W[,iteration=...], "
                        "joined with '+'")
    t.add_argument("--transmit-timeout", type=float, default=None, metavar="SECONDS",
                   help="drop a worker whose vector is this late (default: max(0.5 s, "
                        "5 x the median iteration time))")
    t.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    t.add_argument("--row-block", type=int, default=256, metavar="ROWS",
                   help="rows between checks of the encode-and-transmit signal")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("--iteration-timeout", type=float, default=None, metavar="SECONDS",
                   help="decode what arrived after SECONDS when the trigger cannot fire "
                        "(e.g. a failed worker under uncoded); default: 10 x the larger of "
                        "the median iteration time and the first report's time, >= 1 s")

    s = sub.add_parser("simulate", help="discrete-event simulation of the protocol (no MPI)")
    add_protocol_options(s)
    s.add_argument("--workers", type=int, default=20, metavar="N")
    s.add_argument("--trials", type=int, default=1000, metavar="K")
    s.add_argument("--replay", default=None, metavar="DIR")
    s.add_argument("--json", action="store_true")

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench", parser_class=_Parser)
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
                    help="only aggregate runs already in DIR/<scheme>-ranks-<n>/ (from a Slurm sweep)")

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

    sub.add_parser("warmup", help="compile every Numba kernel into the cache")
    return parser


# subcommand -> "module:function" taking the parsed arguments, returning an exit status
_HANDLERS = {
    "train": "mpigc.runtime.train:main",
    "simulate": "mpigc.sim.cli:main",
    ("bench", "kernels"): "mpigc.bench.kernels:main",
    ("bench", "scaling"): "mpigc.bench.scaling:main",
    ("bench", "stragglers"): "mpigc.bench.stragglers:main",
    "warmup": "mpigc.kernels:warmup_main",
}


def _handler(args):
    key = args.command if args.command != "bench" else ("bench", args.bench)
    if key not in _HANDLERS:
        raise UsageError("missing subcommand (try 'mpigc --help')")
    module, func = _HANDLERS[key].split(":")
    return getattr(importlib.import_module(module), func)


def main(argv=None):
    launch.configure()
    rank = launch.launcher_rank()
    try:
        args = build_parser().parse_args(argv)
        return int(_handler(args)(args) or 0)
    except UsageError as exc:
        if rank == 0:
            print(f"mpigc: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout went to a reader that stopped early (`... --json | head`): not an error
        # worth a traceback; silence the interpreter's final flush as the Python docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
