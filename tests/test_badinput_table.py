"""Every kind of bad input to ``mpigc train``, in one table (issue 7, "Bad input").

Each case runs the real command line (a plain process for option errors found before MPI
starts, ``mpiexec -n k`` for errors that need the world size or that only a worker sees
in its rows) and must end with: exit status 2, exactly one stderr line
``mpigc: error: ...`` matching the case's pattern, no traceback anywhere, every rank
stopped within the timeout, and nothing left behind (the run's ``--out`` directory is not
created and the working directory gains no file).
"""

from pathlib import Path

import numpy as np
import pytest

from mpiutil import assert_usage_error, run_cli, run_mpi, tails

TIMEOUT = 60
MPI1 = -1  # ranks value: mpiexec -n 1 (1 means a plain `python -m mpigc`)
SMALL = "synthetic:n=120,d=4"


# -- files the cases read (each writes into the case's empty directory) ---------------------
def _npz(name, X, y):
    def make(tmp):
        from mpigc.data import save_npz

        save_npz(tmp / name, np.asarray(X, float), np.asarray(y, float))
    return make


def _text(name, text):
    def make(tmp):
        (tmp / name).write_text(text)
    return make


def _dir(name):
    def make(tmp):
        (tmp / name).mkdir()
    return make


def _all(*makers):
    def make(tmp):
        for m in makers:
            m(tmp)
    return make


def _rows(n=90, d=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def _with(X, row, col, value):
    X = X.copy()
    X[row, col] = value
    return X


def _labels(n=90):
    return np.arange(n) % 2


_X = _rows()
# 90 rows, 3 workers at load 1 (3 chunks of 30): row 70 lies in chunk 2, read by one worker.
NAN_NPZ = _npz("nan.npz", _with(_X, 70, 3, np.nan), _labels())
INF_NPZ = _npz("inf.npz", _with(_X, 70, 1, -np.inf), _labels())
THREE_CLASSES = _npz("three.npz", _X, np.arange(90) % 3)
TWO_ROWS = _npz("two.npz", _X[:2], [0, 1])
WIDE = _npz("wide.npz", _rows(90, 5), _labels())
NARROW = _npz("narrow.npz", _X, _labels())
SVM_OK = "".join(f"{i % 2} 1:0.5 2:{i} 3:1\n" for i in range(89))
SVM_BAD_TOKEN = _text("bad.svm", SVM_OK + "1 1:0.5 2:abc\n")
SVM_NO_COLON = _text("nocolon.svm", SVM_OK + "1 1:0.5 2 3:1\n")
SVM_REPEATED = _text("twice.svm", SVM_OK + "1 3:1 1:0.5 3:2\n")  # apart until sorted
SVM_BAD_LABEL = _text("label.svm", SVM_OK + "one 1:0.5\n")
SVM_ZERO_INDEX = _text("zero.svm", SVM_OK + "1 0:0.5\n")
SVM_NAN = _text("nan.svm", SVM_OK + "1 1:nan 2:1\n")
SVM_INF = _text("inf.svm", SVM_OK + "0 1:1 3:inf\n")
SVM_NARROW = _text("narrow.svm", SVM_OK)
SVM_WIDE = _text("wide.svm", SVM_OK + "1 5:1\n")  # uses feature 5
SVM_HUGE_INDEX = _text("big.svm", SVM_OK + "1 1:1 99999999999:1\n")


def SVM_GZ(tmp):
    import gzip

    with gzip.open(tmp / "d.svm.gz", "wt") as f:
        f.write(SVM_OK)


SVM_GZ_DAMAGED = _text("bad.svm.gz", "not gzip data\n")
TRACE_2x3 = _text("trace.txt", "1 1 1\n2 2 2\n")            # 3 columns, the run has 1 worker
TRACE_WORDS = _text("trace.txt", "1\nfast\n")
TRACE_NEGATIVE = _text("trace.txt", "1 -2\n")
ASSIGN_NOT01 = _text("assign.txt", "1 0\n2 1\n")
ASSIGN_WORDS = _text("assign.txt", "1 x\n0 1\n")
ASSIGN_ORPHAN = _text("assign.txt", "1 1\n0 0\n")
ASSIGN_3W = _text("assign.txt", "1 1 0\n0 1 1\n1 0 1\n")    # 3 workers, the run has 2
ORDER_WORDS = _text("order.txt", "0 one\n1 0\n")
ORDER_FOREIGN = _text("order.txt", "0 5\n1 0\n")            # chunk 5 does not exist
ORDER_SHORT = _text("order.txt", "0 1\n")                   # one line, two workers
OUT_FILE = _text("outfile", "keep me\n")
BAD_CHECKPOINT = _all(_dir("ck"), _text("ck/checkpoint.npz", "not an archive\n"))


def CHECKPOINT_ELL_1(tmp):
    """A real checkpoint of a 2-worker psgc run with --load 2 --ell 1 in tmp/ck."""
    res = run_mpi(3, ["mpigc", "train", "--data", SMALL, "--load", "2", "--ell", "1",
                      "--iterations", "2", "--checkpoint-every", "1", "--out", tmp / "ck",
                      "--quiet"], timeout=TIMEOUT, env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0 and (tmp / "ck" / "checkpoint.npz").exists(), res.stderr


def _model(name, d=4, model="logistic"):
    """A model file of mpigc train (model.npz layout) with d coefficients."""
    def make(tmp):
        np.savez(tmp / name, coef=np.ones(d), intercept=np.float64(0.5), model=model,
                 n_features=d)
    return make


MODEL_4 = _model("model.npz")
LINEAR_4 = _model("lin.npz", model="linear")


def case(id, argv, match, ranks=1, setup=None):
    return pytest.param(argv, match, ranks, setup, id=id)


CASES = [
    # -- command line: names, numbers, times (one process: refused before MPI starts)
    case("no-subcommand", [], r"missing subcommand"),
    case("unknown-option", ["train", "--bogus", "1"], r"unrecognized arguments: --bogus"),
    case("unknown-scheme", ["train", "--scheme", "fast"], r"--scheme.*invalid choice: 'fast'"),
    case("unknown-model", ["train", "--model", "svm"], r"--model.*invalid choice: 'svm'"),
    case("unknown-optimizer", ["train", "--optimizer", "adam"], r"--optimizer.*'adam'"),
    case("unknown-dtype", ["train", "--dtype", "float16"], r"--dtype.*'float16'"),
    case("unknown-beta", ["train", "--beta", "cauchy"], r"--beta.*'cauchy'"),
    case("iterations-not-int", ["train", "--iterations", "ten"], r"--iterations.*'ten'"),
    case("iterations-zero", ["train", "--iterations", "0"],
         r"--iterations must be at least 1, got 0"),
    case("chunk-time-negative", ["train", "--chunk-time", "-1"], r"--chunk-time .*>= 0, got -1"),
    case("chunk-time-nan", ["train", "--chunk-time", "nan"], r"--chunk-time .*finite.*nan"),
    case("decode-unknown", ["train", "--decode", "gather"], r"--decode.*invalid choice: 'gather'"),
    case("decode-reduce-transmit-timeout", ["train", "--decode", "reduce", "--transmit-timeout", "1"],
         r"--transmit-timeout needs --decode p2p"),
    case("decode-reduce-allreduce", ["train", "--scheme", "allreduce", "--decode", "reduce"],
         r"--decode reduce applies to parameter-server schemes, not allreduce", ranks=2),
    case("iteration-timeout-zero", ["train", "--iteration-timeout", "0"],
         r"--iteration-timeout .*> 0, got 0"),
    case("lr-negative", ["train", "--lr", "-0.1"], r"--lr .*> 0, got -0.1"),
    case("lr-word", ["train", "--lr", "fast"], r"--lr .*'fast'"),
    case("history-zero", ["train", "--optimizer", "lbfgs", "--history", "0"],
         r"--history must be at least 1, got 0"),
    case("history-word", ["train", "--history", "ten"], r"--history: invalid int value: 'ten'"),
    case("tol-negative", ["train", "--tol=-1e-6"], r"--tol must be a finite number >= 0, "
         r"got -1e-06"),
    case("tol-nan", ["train", "--tol", "nan"], r"--tol must be a finite number >= 0, got nan"),
    case("tol-word", ["train", "--tol", "tight"], r"--tol: invalid float value: 'tight'"),
    case("precondition-unknown", ["train", "--precondition", "whiten"],
         r"--precondition: invalid choice: 'whiten'"),
    case("lbfgs-with-deadline", ["train", "--optimizer", "lbfgs", "--deadline", "0.1"],
         r"--optimizer lbfgs needs exact gradients and losses; --deadline decodes "
         r"approximate ones"),
    case("lbfgs-with-ignore-stragglers", ["train", "--optimizer", "lbfgs", "--scheme",
                                          "ignore-stragglers"],
         r"--optimizer lbfgs needs exact gradients and losses; ignore-stragglers decodes "
         r"approximate ones"),
    case("abbreviated-option", ["train", "--iter", "5"], r"unrecognized arguments: --iter 5"),
    case("straggler-tolerance-word", ["train", "--straggler-tolerance", "1e-9"],
         r"--straggler-tolerance/--tolerance: invalid int value: '1e-9'"),
    case("l2-negative", ["train", "--l2", "-1"], r"--l2 .*>= 0, got -1"),
    case("row-block-zero", ["train", "--row-block", "0"], r"--row-block must be at least 1, got 0"),
    case("seed-negative", ["train", "--seed", "-3"], r"--seed must be >= 0, got -3"),
    # -- data specs and files (checked by every rank once MPI has started, then agreed)
    case("data-missing", ["train", "--data", "nope.npz"], r"data file not found: nope\.npz",
         ranks=2),
    case("data-is-directory", ["train", "--data", "d.npz"], r"data file is a directory: d\.npz",
         setup=_dir("d.npz"), ranks=2),
    case("data-under-a-file", ["train", "--data", "outfile/x.svm"],
         r"data file not found: outfile/x\.svm",
         setup=OUT_FILE, ranks=2),
    case("data-unknown-suffix", ["train", "--data", "x.csv"], r"unknown data file type 'x\.csv'",
         setup=_text("x.csv", "1,2\n"), ranks=2),
    case("data-glob-no-match", ["train", "--data", "shard-*.svm"],
         r"no data file matches 'shard-\*\.svm'", ranks=2),
    case("data-option-on-npz", ["train", "--data", "narrow.npz:features=3"],
         r"option 'features' does not apply to \.npz", setup=NARROW, ranks=2),
    case("svm-unknown-option", ["train", "--data", "narrow.svm:cols=3"],
         r"unknown option 'cols'", setup=SVM_NARROW, ranks=2),
    case("synthetic-zero-rows", ["train", "--data", "synthetic:n=0,d=3"],
         r"n=0 .*positive integer", ranks=2),
    case("synthetic-unknown-option", ["train", "--data", "synthetic:rows=5"],
         r"unknown option 'rows'", ranks=2),
    case("features-differ-npz", ["train", "--data", "narrow.npz+wide.npz"],
         r"feature counts differ between files: narrow\.npz has 4, wide\.npz has 5",
         setup=_all(NARROW, WIDE), ranks=2),
    case("features-differ-svm", ["train", "--data", "narrow.npz+wide.svm"],
         r"feature counts differ between files: narrow\.npz has 4, wide\.svm uses 5",
         setup=_all(NARROW, SVM_WIDE), ranks=2),
    case("svm-index-above-features", ["train", "--data", "narrow.svm:features=2", "--load", "1"],
         r"narrow\.svm line 1: feature index 3 exceeds the 2 features", ranks=4, setup=SVM_NARROW),
    # -- faults, timeouts and checkpoints (options checked before MPI starts)
    case("faults-unknown-kind", ["train", "--faults", "crash:worker=1"],
         r"--faults 'crash:worker=1': unknown fault 'crash'"),
    case("faults-stall-without-seconds", ["train", "--faults", "stall:worker=1"],
         r"--faults 'stall:worker=1': missing seconds"),
    case("faults-stall-zero-seconds", ["train", "--faults", "stall:worker=0,seconds=0"],
         r"seconds must be a positive finite number, got '0'"),
    case("faults-stall-negative-seconds", ["train", "--faults", "stall:worker=0,seconds=-2"],
         r"seconds must be a positive finite number, got '-2'"),
    case("faults-reversed-range", ["train", "--faults", "fail:worker=1,iteration=5-2"],
         r"empty iteration range '5-2'"),
    case("faults-worker-not-integer", ["train", "--faults", "fail:worker=x"],
         r"worker='x' is not an integer"),
    case("faults-unknown-key", ["train", "--faults", "nan:worker=1,when=3"],
         r"unknown key 'when' for nan"),
    case("faults-kill-without-iteration", ["train", "--faults", "kill:worker=1"],
         r"--faults 'kill:worker=1': missing iteration"),
    case("faults-kill-range", ["train", "--faults", "kill:worker=1,iteration=2-4"],
         r"a worker dies once: iteration must be one number, got '2-4'"),
    case("faults-kill-negative-seconds", ["train", "--faults",
                                          "kill:worker=1,iteration=2,seconds=-1"],
         r"seconds must be a non-negative finite number, got '-1'"),
    case("faults-kill-bad-chunks", ["train", "--faults", "kill:worker=1,iteration=2,chunks=x"],
         r"chunks='x' is not an integer"),
    case("faults-empty-join", ["train", "--faults", "fail:worker=1+"], r"empty fault between '\+'"),
    case("faults-worker-out-of-range", ["train", "--data", SMALL, "--faults", "fail:worker=5"],
         r"worker 5 does not exist \(the run has 1 workers", ranks=2),
    case("transmit-timeout-zero", ["train", "--transmit-timeout", "0"],
         r"--transmit-timeout must be a finite number > 0, got 0"),
    case("transmit-timeout-negative", ["train", "--transmit-timeout", "-1"],
         r"--transmit-timeout must be a finite number > 0, got -1"),
    case("checkpoint-every-negative", ["train", "--checkpoint-every", "-1"],
         r"--checkpoint-every must be >= 0, got -1"),
    case("checkpoint-every-without-out", ["train", "--checkpoint-every", "2"],
         r"--checkpoint-every 2 needs --out DIR"),
    case("out-empty", ["train", "--out", " "], r"--out must name a directory"),
    case("resume-without-checkpoint", ["train", "--data", SMALL, "--resume", "empty"],
         r"--resume empty: no checkpoint", ranks=2, setup=_dir("empty")),
    case("resume-damaged-checkpoint", ["train", "--data", SMALL, "--resume", "ck"],
         r"--resume ck: .*checkpoint\.npz is not a valid checkpoint", ranks=2,
         setup=BAD_CHECKPOINT),
    case("resume-other-ell", ["train", "--data", SMALL, "--load", "2", "--ell", "2",
                              "--iterations", "4", "--resume", "ck"],
         r"checkpoint in ck was written with --ell 1, this run has --ell 2", ranks=3,
         setup=CHECKPOINT_ELL_1),
    case("resume-other-world", ["train", "--data", SMALL, "--load", "2", "--ell", "1",
                                "--iterations", "4", "--resume", "ck"],
         r"checkpoint in ck was written with .*3 MPI ranks.*4 MPI ranks|--load|--ordering",
         ranks=4, setup=CHECKPOINT_ELL_1),
    # -- world size and scheme settings (need the world size: mpiexec)
    case("world-plain-process", ["train", "--data", SMALL], r"at least 2 MPI ranks .*got 1"),
    case("world-mpiexec-1", ["train", "--data", SMALL], r"at least 2 MPI ranks .*got 1",
         ranks=MPI1),
    case("load-larger-than-n", ["train", "--data", SMALL, "--load", "3"],
         r"--load must be between 1 and the number of workers \(2\), got 3", ranks=3),
    case("load-zero", ["train", "--data", SMALL, "--load", "0"], r"--load .* got 0", ranks=3),
    case("load-on-uncoded", ["train", "--data", SMALL, "--scheme", "uncoded", "--load", "2"],
         r"--load must be 1 for uncoded", ranks=3),
    case("frc-load-not-dividing", ["train", "--data", SMALL, "--assignment", "frc", "--load", "2"],
         r"load 2 does not divide 3", ranks=4),
    case("ell-zero", ["train", "--data", SMALL, "--ell", "0"], r"--ell must be between 1 .* got 0",
         ranks=3),
    case("ell-above-replication", ["train", "--data", SMALL, "--load", "2", "--ell", "3"],
         r"--ell must be between 1 and the smallest replication \(2\), got 3", ranks=3),
    case("tolerance-too-large", ["train", "--data", SMALL, "--scheme", "gc", "--load", "2",
                                 "--tolerance", "2"],
         r"--straggler-tolerance must be between 0 and 1, got 2", ranks=3),
    case("tolerance-on-gc-frc", ["train", "--data", SMALL, "--scheme", "gc", "--assignment",
                                 "frc", "--load", "2", "--tolerance", "0"],
         r"--straggler-tolerance does not apply to gc on a fractional repetition .*got 0", ranks=5),
    case("deadline-zero", ["train", "--data", SMALL, "--deadline", "0"],
         r"--deadline must be a positive number of seconds, got 0", ranks=2),
    case("deadline-negative", ["train", "--data", SMALL, "--deadline", "-2"],
         r"--deadline must be a positive number of seconds, got -2", ranks=2),
    case("deadline-on-uncoded",
         ["train", "--data", SMALL, "--scheme", "uncoded", "--deadline", "1"],
         r"--deadline applies to psgc and gc, not uncoded", ranks=2),
    case("unknown-assignment", ["train", "--data", SMALL, "--assignment", "weird"],
         r"cannot read assignment file weird: No such file or directory$", ranks=2),
    case("unknown-ordering", ["train", "--data", SMALL, "--ordering", "weird"],
         r"cannot read orderings file weird: No such file or directory$", ranks=2),
    # -- straggler specs (parsed for the world size, identically on every rank)
    case("stragglers-unknown-model", ["train", "--data", SMALL, "--stragglers", "lazy"],
         r"unknown straggler model 'lazy'", ranks=2),
    case("stragglers-missing-parameter", ["train", "--data", SMALL, "--stragglers", "exp"],
         r"straggler model 'exp' needs mean=", ranks=2),
    case("stragglers-not-a-number", ["train", "--data", SMALL, "--stragglers", "exp:mean=slow"],
         r"mean='slow' is not a number", ranks=2),
    case("stragglers-probability-above-1", ["train", "--data", SMALL, "--stragglers",
                                            "bimodal:p=2,slowdown=3"], r"'bimodal': p .*got 2",
         ranks=2),
    case("stragglers-negative-alpha", ["train", "--data", SMALL, "--stragglers", "pareto:alpha=-1"],
         r"'pareto': alpha .*got -1", ranks=2),
    case("stragglers-parameter-twice",
         ["train", "--data", SMALL, "--stragglers", "fail:p=0.1,p=0.2"],
         r"parameter 'p' given twice", ranks=2),
    case("stragglers-unknown-parameter", ["train", "--data", SMALL, "--stragglers", "fail:q=0.1"],
         r"'fail' has no parameter 'q'", ranks=2),
    case("stragglers-empty-join", ["train", "--data", SMALL, "--stragglers", "exp:mean=1+"],
         r"empty model in straggler spec", ranks=2),
    case("stragglers-fail-with-allreduce", ["train", "--data", SMALL, "--scheme", "allreduce",
                                            "--stragglers", "fail:p=0.1"],
         r"allreduce cannot run with failing workers", ranks=2),
    case("trace-missing", ["train", "--data", SMALL, "--stragglers", "trace:none.txt"],
         r"trace file 'none\.txt' does not exist", ranks=2),
    case("trace-wrong-shape", ["train", "--data", SMALL, "--stragglers", "trace:trace.txt"],
         r"trace\.txt", ranks=2, setup=TRACE_2x3),
    case("trace-not-numbers", ["train", "--data", SMALL, "--stragglers", "trace:trace.txt"],
         r"trace file 'trace\.txt' is not a table of numbers", ranks=2, setup=TRACE_WORDS),
    case("trace-negative-factor", ["train", "--data", SMALL, "--stragglers", "trace:trace.txt"],
         r"trace\.txt.*-2", ranks=3, setup=TRACE_NEGATIVE),
    # -- assignment and ordering files
    case("assignment-not-0-1", ["train", "--data", SMALL, "--assignment", "assign.txt"],
         r"assignment file assign\.txt: .*0/1", ranks=3, setup=ASSIGN_NOT01),
    case("assignment-not-numbers", ["train", "--data", SMALL, "--assignment", "assign.txt"],
         r"assignment file assign\.txt", ranks=3, setup=ASSIGN_WORDS),
    case("assignment-orphan-chunk", ["train", "--data", SMALL, "--assignment", "assign.txt"],
         r"assignment file assign\.txt: chunk 1 is held by no worker", ranks=3,
         setup=ASSIGN_ORPHAN),
    case("assignment-wrong-workers", ["train", "--data", SMALL, "--assignment", "assign.txt"],
         r"assignment file assign\.txt has 3 workers, the run has 2", ranks=3, setup=ASSIGN_3W),
    case("assignment-is-directory", ["train", "--data", SMALL, "--assignment", "a.txt"],
         r"cannot read assignment file a\.txt: Is a directory$", ranks=3, setup=_dir("a.txt")),
    case("ordering-not-integers",
         ["train", "--data", SMALL, "--load", "2", "--ordering", "order.txt"],
         r"orderings file order\.txt: line 1 has a non-integer chunk id", ranks=3,
         setup=ORDER_WORDS),
    case("ordering-foreign-chunk",
         ["train", "--data", SMALL, "--load", "2", "--ordering", "order.txt"],
         r"orderings file order\.txt: .*worker 0", ranks=3, setup=ORDER_FOREIGN),
    case("ordering-too-few-lines",
         ["train", "--data", SMALL, "--load", "2", "--ordering", "order.txt"],
         r"orderings file order\.txt", ranks=3, setup=ORDER_SHORT),
    # -- data that only the workers reading the rows see (agreed collectively)
    case("npz-nan-feature", ["train", "--data", "nan.npz", "--load", "1"],
         r"nan\.npz.*row 70.*feature 3", ranks=4, setup=NAN_NPZ),
    case("npz-inf-feature", ["train", "--data", "inf.npz", "--load", "1"],
         r"inf\.npz.*row 70.*feature 1", ranks=4, setup=INF_NPZ),
    case("svm-nan-feature", ["train", "--data", "nan.svm", "--load", "1"],
         r"nan\.svm.*(line|row) (90|89)", ranks=4, setup=SVM_NAN),
    case("svm-inf-feature", ["train", "--data", "inf.svm", "--load", "1"],
         r"inf\.svm.*(line|row) (90|89)", ranks=4, setup=SVM_INF),
    case("svm-bad-value", ["train", "--data", "bad.svm", "--load", "1"],
         r"bad\.svm.*line 90", ranks=4, setup=SVM_BAD_TOKEN),
    case("svm-repeated-index", ["train", "--data", "twice.svm", "--load", "1"],
         r"twice\.svm line 90: feature index 3 appears twice", ranks=4, setup=SVM_REPEATED),
    case("svm-token-without-colon", ["train", "--data", "nocolon.svm", "--load", "1"],
         r"nocolon\.svm.*line 90", ranks=4, setup=SVM_NO_COLON),
    case("svm-bad-label", ["train", "--data", "label.svm", "--load", "1"],
         r"label\.svm.*line 90", ranks=4, setup=SVM_BAD_LABEL),
    case("svm-index-zero", ["train", "--data", "zero.svm", "--load", "1"],
         r"zero\.svm.*line 90", ranks=4, setup=SVM_ZERO_INDEX),
    case("labels-three-classes", ["train", "--data", "three.npz", "--load", "1"],
         r"three\.npz: .*logistic", ranks=4, setup=THREE_CLASSES),
    case("fewer-rows-than-chunks", ["train", "--data", "two.npz"],
         r"2 rows, fewer than the 3 chunks", ranks=4, setup=TWO_ROWS),
    case("fewer-rows-synthetic", ["train", "--data", "synthetic:n=2,d=3"],
         r"2 rows, fewer than the 3 chunks", ranks=4),
    case("svm-huge-index", ["train", "--data", "big.svm", "--load", "1"],
         r"big\.svm line 90: feature index 99999999999: a model of 99999999999 features needs "
         r"[\d.]+ TiB per rank \(\d+ vectors of 745 GiB\), more than the .* available$",
         ranks=4, setup=SVM_HUGE_INDEX),
    case("svm-huge-features-option", ["train", "--data", "narrow.svm:features=99999999999"],
         r"features=99999999999 in the data spec of narrow\.svm: a model of 99999999999 features",
         ranks=2, setup=SVM_NARROW),
    case("synthetic-huge-model", ["train", "--data", "synthetic:n=100,d=99999999999"],
         r"d=99999999999 in the synthetic data spec: a model of 99999999999 features needs",
         ranks=2),
    case("synthetic-huge-rows", ["train", "--data", "synthetic:n=10000000,d=100000"],
         r"the 10000000 x 100000 rows of one rank and the model need [\d.]+ TiB, more than",
         ranks=4),
    case("svm-compressed-in-train", ["train", "--data", "d.svm.gz"],
         r"d\.svm\.gz is compressed: .*'mpigc convert d\.svm\.gz d\.npz'", ranks=2,
         setup=SVM_GZ),
    # -- mpigc convert and mpigc bench data (one process)
    case("convert-output-not-npz", ["convert", "narrow.svm", "out.csv"],
         r"the output of mpigc convert must be a \.npz file, got 'out\.csv'", setup=SVM_NARROW),
    case("convert-output-dir-missing", ["convert", "narrow.svm", "nodir/out.npz"],
         r"cannot write nodir/out\.npz: .*nodir is not a directory", setup=SVM_NARROW),
    case("convert-output-is-directory", ["convert", "narrow.svm", "d.npz"],
         r"cannot write d\.npz: it is a directory", setup=_all(SVM_NARROW, _dir("d.npz"))),
    case("convert-input-missing", ["convert", "nope.svm", "out.npz"], r"data file not found"),
    case("convert-damaged-gz", ["convert", "bad.svm.gz", "out.npz"], r"cannot read bad\.svm\.gz",
         setup=SVM_GZ_DAMAGED),
    case("convert-bad-line", ["convert", "bad.svm", "out.npz"], r"bad\.svm line 90: value 'abc'",
         setup=SVM_BAD_TOKEN),
    case("convert-missing-output", ["convert", "narrow.svm"], r"required: OUT\.npz",
         setup=SVM_NARROW),
    case("bench-data-rows-zero", ["bench", "data", "--rows", "0"],
         r"--rows must be at least 1, got 0"),
    case("bench-data-one-rank", ["bench", "data", "--ranks", "1"],
         r"--ranks must be at least 2 \(a PS and a worker\), got 1"),
    case("bench-data-nnz-above-cols", ["bench", "data", "--cols", "10", "--nnz", "20"],
         r"--nnz must be at most --cols \(10\), got 20"),
    # -- mpigc predict (one process; --out must stay unwritten)
    case("predict-model-missing", ["predict", "nope.npz", "narrow.npz"],
         r"model file not found: nope\.npz$", setup=NARROW),
    case("predict-model-is-data", ["predict", "narrow.npz", "narrow.npz"],
         r"narrow\.npz is not an mpigc model file \(no 'coef' or 'w' array", setup=NARROW),
    case("predict-model-not-npz", ["predict", "m.npz", "narrow.npz"],
         r"m\.npz is not an mpigc model file \(not an \.npz archive\)",
         setup=_all(NARROW, _text("m.npz", "coef 1 1 1 1\n"))),
    case("predict-data-missing", ["predict", "model.npz", "nope.svm"],
         r"data file not found: nope\.svm$", setup=MODEL_4),
    case("predict-data-nan", ["predict", "model.npz", "nan.npz", "--out", "p.npy"],
         r"nan\.npz.*row 70.*feature 3", setup=_all(MODEL_4, NAN_NPZ)),
    case("predict-data-bad-line", ["predict", "model.npz", "bad.svm", "--out", "p.npy"],
         r"bad\.svm line 90", setup=_all(MODEL_4, SVM_BAD_TOKEN)),
    case("predict-features-differ", ["predict", "model.npz", "wide.npz", "--out", "p.npy"],
         r"the model model\.npz has 4 features, the data wide\.npz has 5$",
         setup=_all(MODEL_4, WIDE)),
    case("predict-features-differ-svm", ["predict", "model.npz", "wide.svm", "--out", "p.csv"],
         r"the model model\.npz has 4 features, the data wide\.svm has 5$",
         setup=_all(MODEL_4, SVM_WIDE)),
    case("predict-labels-three-classes", ["predict", "model.npz", "three.npz", "--out", "p.npy"],
         r"three\.npz: logistic regression needs labels in \{0, 1\} or \{-1, 1\}; got 2$",
         setup=_all(MODEL_4, THREE_CLASSES)),
    case("predict-proba-linear", ["predict", "lin.npz", "narrow.npz", "--proba", "--out", "p.npy"],
         r"--proba gives class probabilities of a logistic model; lin\.npz is a linear model",
         setup=_all(LINEAR_4, NARROW)),
    case("predict-out-suffix", ["predict", "model.npz", "narrow.npz", "--out", "p.txt"],
         r"--out must end in \.npy or \.csv, got 'p\.txt'", setup=_all(MODEL_4, NARROW)),
    case("predict-out-dir-missing", ["predict", "model.npz", "narrow.npz", "--out", "no/p.npy"],
         r"cannot write no/p\.npy: no is not a directory", setup=_all(MODEL_4, NARROW)),
    case("predict-out-is-directory", ["predict", "model.npz", "narrow.npz", "--out", "d.npy"],
         r"cannot write d\.npy: it is a directory", setup=_all(MODEL_4, NARROW, _dir("d.npy"))),
    case("predict-missing-data", ["predict", "model.npz"],
         r"the following arguments are required: DATA", setup=MODEL_4),
    # -- mpigc simulate (no MPI: everything is refused by the one process)
    case("simulate-zero-workers", ["simulate", "--workers", "0"], r"--workers must be >= 1, got 0"),
    case("simulate-zero-trials", ["simulate", "--trials", "0"], r"--trials must be >= 1, got 0"),
    case("simulate-load-above-n", ["simulate", "--workers", "5", "--load", "9"],
         r"--load must be between 1 and the number of workers \(5\), got 9"),
    case("simulate-negative-deadline", ["simulate", "--deadline", "-1"],
         r"--deadline must be a positive number of chunk times, got -1"),
    case("simulate-bad-stragglers", ["simulate", "--stragglers", "exp:mean=-1"],
         r"straggler model 'exp': mean"),
    case("simulate-replay-missing", ["simulate", "--replay", "nowhere"],
         r"--replay nowhere: no such directory"),
    case("simulate-replay-not-a-run", ["simulate", "--replay", "empty"],
         r"cannot read empty/summary\.json", setup=_dir("empty")),
    case("simulate-cost-model-missing", ["simulate", "--cost-model", "nope.json", "--chunk-time", "1"],
         r"--cost-model nope\.json: cannot read it"),
    case("simulate-cost-model-not-json", ["simulate", "--cost-model", "x.json", "--chunk-time", "1"],
         r"--cost-model x\.json: not valid JSON", setup=_text("x.json", "{")),
    case("simulate-cost-model-no-chunk-time", ["simulate", "--cost-model", "x.json"],
         r"--cost-model needs --chunk-time SECONDS > 0, got None", setup=_text("x.json", "{}")),
    case("simulate-chunk-time-without-model", ["simulate", "--chunk-time", "1"],
         r"--chunk-time, --latency, --bandwidth and --decode need --cost-model FILE"),
    case("simulate-bandwidth-zero", ["simulate", "--cost-model", "x.json", "--chunk-time", "1",
                                     "--bandwidth", "0"],
         r"--bandwidth must be a positive number of bytes per second, got 0",
         setup=_text("x.json", "{}")),
    case("simulate-latency-negative", ["simulate", "--cost-model", "b.json", "--chunk-time", "1",
                                       "--latency", "-1"],
         r"--latency must be a finite number >= 0, got -1", setup=_text("b.json", '''{
         "report_us": 2, "read_bandwidth_gbytes_per_s": 10, "decode": [{"n_workers": 2,
         "received_mbytes": 1, "decode_gbytes_per_s": 5, "decode_tail_ms": 1}]}''')),
    case("simulate-dim-zero", ["simulate", "--cost-model", "x.json", "--chunk-time", "1",
                               "--dim", "0"], r"--dim must be >= 1, got 0", setup=_text("x.json", "{}")),
    case("simulate-unknown-decode", ["simulate", "--decode", "tree"], r"--decode.*invalid choice: 'tree'"),
    # -- mpigc bench ps (refused before any rank starts)
    case("bench-ps-case-words", ["bench", "ps", "--cases", "64:big:1"],
         r"--cases takes N:d:ell items separated by commas, got '64:big:1'"),
    case("bench-ps-ell-above-load", ["bench", "ps", "--cases", "8:100:4"],
         r"--cases 8:100:4: needs N >= 1, d >= 1 and 1 <= ell <= min\(3, N\)"),
    case("bench-ps-no-case", ["bench", "ps", "--cases", ","], r"--cases names no case"),
    case("bench-ps-repeat-zero", ["bench", "ps", "--repeat", "0"], r"--repeat must be >= 1, got 0"),
    # -- mpigc bench decode (refused before any rank starts)
    case("bench-decode-case-words", ["bench", "decode", "--cases", "8:big:1"],
         r"--cases takes N:d:ell items separated by commas, got '8:big:1'"),
    case("bench-decode-one-worker", ["bench", "decode", "--cases", "1:100:1"],
         r"--cases: every N must be >= 2"),
    case("bench-decode-pairs-zero", ["bench", "decode", "--pairs", "0"],
         r"--pairs must be >= 1, got 0"),
    case("bench-decode-block-zero", ["bench", "decode", "--block", "0"],
         r"--block must be >= 1, got 0"),
    # -- the model a user takes home: intercept, scaling, held-out data
    case("validation-fraction-one", ["train", "--validation-fraction", "1"],
         r"--validation-fraction must be a number in \[0, 1\), got 1"),
    case("validation-fraction-negative", ["train", "--validation-fraction=-0.1"],
         r"--validation-fraction must be a number in \[0, 1\), got -0.1"),
    case("validation-fraction-nan", ["train", "--validation-fraction", "nan"],
         r"--validation-fraction must be a number in \[0, 1\), got nan"),
    case("validation-fraction-word", ["train", "--validation-fraction", "half"],
         r"--validation-fraction: invalid float value: 'half'"),
    case("eval-every-negative", ["train", "--test-data", SMALL, "--eval-every=-1"],
         r"--eval-every must be >= 0, got -1"),
    case("eval-every-without-holdout", ["train", "--eval-every", "5"],
         r"--eval-every 5 needs held-out data \(--test-data or --validation-fraction\)"),
    case("test-data-and-validation", ["train", "--test-data", SMALL,
                                      "--validation-fraction", "0.2"],
         r"--test-data and --validation-fraction both name a held-out set; give one"),
    case("test-data-empty", ["train", "--test-data", " "], r"--test-data must name a data spec"),
    case("test-data-missing", ["train", "--data", SMALL, "--test-data", "nope.npz"],
         r"nope\.npz", ranks=2),
    case("test-data-other-features", ["train", "--data", "narrow.npz", "--test-data",
                                      "wide.npz"],
         r"--test-data wide\.npz: 5 features, the training data narrow\.npz has 4", ranks=3,
         setup=_all(NARROW, WIDE)),
    case("test-data-three-classes", ["train", "--data", "narrow.npz", "--test-data",
                                     "three.npz"],
         r"labels .*2", ranks=3, setup=_all(NARROW, THREE_CLASSES)),
    case("validation-holds-out-every-row", ["train", "--data", "two.npz",
                                            "--validation-fraction", "0.9999999"],
         r"--validation-fraction 0.9999999 holds out every row of two\.npz", ranks=3,
         setup=TWO_ROWS),
    # -- output directory
    case("out-is-a-file", ["train", "--data", SMALL, "--out", "outfile"],
         r"--out outfile exists and is not a directory", ranks=2, setup=OUT_FILE),
    case("out-under-a-file", ["train", "--data", SMALL, "--out", "outfile/run"],
         r"--out outfile/run: cannot create it \(.*outfile is not a directory\)", ranks=2, setup=OUT_FILE),
]


def _snapshot(root):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in Path(root).rglob("*")}


@pytest.mark.parametrize("argv,match,ranks,setup", CASES)
def test_bad_input(tmp_path, argv, match, ranks, setup):
    if setup is not None:
        setup(tmp_path)
    argv = list(argv)
    if argv[:1] == ["train"] and not {"--out", "--resume", "--checkpoint-every"} & set(argv):
        argv += ["--out", "run"]  # must not be created: nothing is left behind
    before = _snapshot(tmp_path)
    env = {"OMP_NUM_THREADS": "1"}
    if ranks == 1:
        res = run_cli(argv, timeout=TIMEOUT, env=env, cwd=tmp_path)
    else:
        res = run_mpi(1 if ranks == MPI1 else ranks, ["mpigc", *argv], timeout=TIMEOUT, env=env,
                      cwd=tmp_path)
    assert_usage_error(res, pattern=match)
    assert "Traceback" not in res.stdout, tails(res)
    assert res.stdout.strip() == "", tails(res)
    after = _snapshot(tmp_path)
    assert after == before, "files were created or changed"


def test_table_is_large_and_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40
