"""``mpigc bench ps``: the parameter server's own costs, through the PS's real code paths.

Two MPI ranks (``mpigc bench ps`` starts them with the default launcher): rank 1 sends the
messages that workers would send (``Comm.send_progress``, ``Comm.send_transmission``: the
runtime's own formats), rank 0 handles them with the
:class:`~mpigc.runtime.ps.ParameterServer`'s own steps. The k-th message stands for
worker k mod N (MPI keeps the order of one sender).

* ``report_us``: per progress report, ``Comm.poll_progress`` (the receive) plus
  ``ParameterServer.take_report`` (tracker update, chunk times, trigger test), draining
  reports already queued at the PS; psgc, cyclic load 3, counts in chunk order, the tracker
  reset after each sweep. At N = 64; ``reports`` has every N measured.
* ``decode``: per case (N, d, ell), rank 1 sends N vectors; rank 0 receives them one by one
  with ``Comm.poll_transmission`` into the decoder's rows and hands each to
  ``ParameterServer.take_vector``; the gradient comes from ``ParameterServer.decoded``.
  ``decode_gbytes_per_s``: bytes of received vectors per second of decode work (the PS's
  time in ``take_vector`` and ``decoded``, not the MPI receive; best of ``--repeat``
  rounds after an untimed first one; ``decode_gbytes_per_s_median`` the median);
  ``decode_tail_ms``: from the return
  of the last vector's receive to the decoded gradient (median of the rounds). Checked
  against ``Protocol.decode``.
* ``numpy_add_gbytes_per_s``: the ceiling of the same case on the same rows, measured after
  each round: the plain sum of the N received vectors by ``np.add(acc, row, out=acc)``
  (best and ``_median``); ``decode_vs_numpy_add``: median over the rounds of the decode's
  rate over this round's reference rate.
* ``read_bandwidth_gbytes_per_s``: ``numpy.add.reduce`` over a float64 array eight times
  the last-level cache (at least 256 MB), best of the rounds, on rank 0 in the same run.
"""

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mpigc import runner
from mpigc.errors import UsageError, require
from mpigc.runtime import launch

DEFAULT_CASES = "64:100000:1,256:100000:1,256:100000:2,1024:10000:1,1024:100000:2"
REPORT_WORKERS = (8, 64, 1024)
REPORT_SWEEPS = 20       # sweeps of N x load reports (at least 20000 reports per count)
MIN_REPORTS = 20000
LOAD = 3
# The read-bandwidth array: this many times the last-level cache (sysfs), at least
# READ_MIN_BYTES, so the reduction streams from memory.
READ_CACHE_FACTOR = 8
READ_MIN_BYTES = 256 * 2**20
BENCH_TIMEOUT = 1800


def format_cases(cases):
    """[(N, d, ell), ...] -> 'N:d:ell,...' (what :func:`parse_cases` reads)."""
    return ",".join(f"{n}:{d}:{ell}" for n, d, ell in cases)


def bench_protocol(n, ell, decode_via="p2p"):
    """The psgc protocol of the PS benches at ``n`` workers: load ``min(LOAD, n)``."""
    from mpigc.schemes import build_protocol

    return build_protocol("psgc", n, load=min(LOAD, n), ell=ell, decode_via=decode_via)


def parse_cases(text):
    """'N:d:ell,...' -> [(N, d, ell), ...] (each >= 1, ell <= LOAD)."""
    cases = []
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        try:
            n, d, ell = (int(float(v)) for v in item.split(":"))
        except ValueError:
            raise UsageError(f"--cases takes N:d:ell items separated by commas, got "
                             f"{item!r}") from None
        require(n >= 1 and d >= 1 and 1 <= ell <= min(LOAD, n),
                f"--cases {item}: needs N >= 1, d >= 1 and 1 <= ell <= min({LOAD}, N)")
        cases.append((n, d, ell))
    require(cases, f"--cases names no case: {text!r}")
    return cases


def last_level_cache_bytes(root="/sys/devices/system/cpu/cpu0/cache"):
    """Size of the largest cache of cpu0 (0 when sysfs does not say)."""
    sizes = []
    for f in Path(root).glob("index*/size"):
        text = f.read_text().strip()
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        try:
            sizes.append(int(text.rstrip("KMG")) * scale)
        except ValueError:
            continue
    return max(sizes, default=0)


def _ps(comm, n, d, ell):
    from mpigc.runtime.ps import ParameterServer

    protocol = bench_protocol(n, ell)
    return ParameterServer(comm, protocol, np.ones(protocol.assignment.n_chunks), d)


def report_cost(comm, n):
    """Microseconds per progress report at ``n`` workers (receive + take_report), rank 0."""
    load = min(LOAD, n)
    sweeps = max(REPORT_SWEEPS, -(-MIN_REPORTS // (n * load)))
    if comm.rank == 1:
        for _ in range(sweeps):
            for count in range(1, load + 1):
                for _ in range(n):
                    comm.send_progress(0, count, [1e-3])
        comm.barrier()
        return None
    ps = _ps(comm, n, 1, 1)
    times = [[] for _ in range(n)]
    comm.barrier()  # every report sent: the PS drains a queue, as after a burst
    t0 = time.perf_counter()
    k = 0
    for _ in range(sweeps):
        ps.tracker.reset()
        for _ in range(load * n):
            got = comm.poll_progress()
            while got is None:  # still in flight
                got = comm.poll_progress()
            ps.take_report(k % n, got[1], times)
            k += 1
    return (time.perf_counter() - t0) / k * 1e6


def decode_round(comm, ps, vectors):
    """Rank 0: one round of N vectors, ``(decode work seconds, tail seconds, gradient)``."""
    n = len(vectors)
    got = ps.receiving(np.ones(n, dtype=np.int64), "exact")
    times = [[] for _ in range(n)]
    pending = set(range(n))
    work = 0.0
    for worker in range(n):
        message = None
        while message is None:
            message = comm.poll_transmission(into=lambda _src, w=worker: ps.decoder.row(w))
        arrived = time.perf_counter()
        ps.take_vector(got, 0, worker, message[1], times, pending)
        work += time.perf_counter() - arrived
    grad = ps.decoded(got)
    done = time.perf_counter()
    return work + (done - arrived), done - arrived, grad


def add_reference(vectors):
    """Seconds of NumPy's plain sum of ``vectors`` (rows) in place: the decode's ceiling."""
    acc = np.zeros(vectors.shape[1])
    t0 = time.perf_counter()
    for row in vectors:
        np.add(acc, row, out=acc)
    return time.perf_counter() - t0


def decode_cost(comm, n, d, ell, repeat, rng):
    """The ``decode`` entry of one case on rank 0 (None on rank 1, which sends)."""
    ps = _ps(comm, n, d, ell) if comm.rank == 0 else None
    vectors = rng.standard_normal((n, -(-d // ell)))
    works, tails, refs = [], [], []
    for k in range(repeat + 1):
        comm.barrier()
        if comm.rank == 1:
            for y in vectors:
                comm.send_transmission(0, [1e-3], [0.0], y)
            comm.wait_sends()
            continue
        work, tail, grad = decode_round(comm, ps, vectors)
        if k == 0:
            continue  # the first touch of the rows and partials: once per run, not per iteration
        works.append(work)
        tails.append(tail)
        refs.append(add_reference(ps.decoder.vectors))
    if comm.rank == 1:
        return None
    expected, _ = ps.protocol.decode(np.ones(n, dtype=np.int64), vectors, ps.d)
    require(np.allclose(grad, expected, rtol=1e-10, atol=1e-10),
            f"bench ps: the streamed decode differs from Protocol.decode at N={n}, d={d}")
    nbytes = vectors.nbytes
    return {"n_workers": n, "d": d, "ell": ell, "received_mbytes": nbytes / 1e6,
            "decode_gbytes_per_s": nbytes / min(works) / 1e9,
            "decode_gbytes_per_s_median": nbytes / statistics.median(works) / 1e9,
            "decode_tail_ms": statistics.median(tails) * 1e3,
            "numpy_add_gbytes_per_s": nbytes / min(refs) / 1e9,
            "numpy_add_gbytes_per_s_median": nbytes / statistics.median(refs) / 1e9,
            "decode_vs_numpy_add": statistics.median(r / w for r, w in zip(refs, works)),
            "decode_ms": [w * 1e3 for w in works], "tail_ms": [t * 1e3 for t in tails],
            "numpy_add_ms": [r * 1e3 for r in refs]}


def read_bandwidth(repeat):
    """GB/s of ``numpy.add.reduce`` over an array far larger than the caches."""
    nbytes = max(READ_MIN_BYTES, READ_CACHE_FACTOR * last_level_cache_bytes())
    a = np.ones(nbytes // 8)
    best = float("inf")
    for _ in range(max(repeat, 3)):
        t0 = time.perf_counter()
        np.add.reduce(a)
        best = min(best, time.perf_counter() - t0)
    return a.nbytes / best / 1e9


def run(cases, repeat, seed=0):
    """Measure everything (collective over the two ranks); the JSON-ready dict on rank 0."""
    from mpigc.runtime import comm as mpicomm

    comm = mpicomm.world()
    require(comm.size == 2, f"mpigc bench ps runs on 2 MPI ranks, got {comm.size}")
    rng = np.random.default_rng(seed)
    reports = [{"n_workers": n, "report_us": report_cost(comm, n)} for n in REPORT_WORKERS]
    decode = [decode_cost(comm, n, d, ell, repeat, rng) for n, d, ell in cases]
    comm.barrier()
    if comm.rank != 0:
        return None
    return {
        "report_us": next(r["report_us"] for r in reports if r["n_workers"] == 64),
        "reports": reports,
        "read_bandwidth_gbytes_per_s": read_bandwidth(repeat),
        "decode": decode,
        "repeat": repeat,
        "last_level_cache_bytes": last_level_cache_bytes(),
    }


def main(args):
    """``mpigc bench ps``: start the two ranks (or be one) and print the PS's costs."""
    cases = parse_cases(args.cases or DEFAULT_CASES)
    require(args.repeat >= 1, f"--repeat must be >= 1, got {args.repeat}")
    if launch.launcher_size() is None:  # not under a launcher: start the two ranks
        cmd = runner.mpigc_command(2, "bench", "ps", "--cases", format_cases(cases),
                                   "--repeat", args.repeat)
        try:  # runner.run kills every rank of the job at the timeout or an interrupt
            out = runner.run(cmd + (["--json"] if args.json else []), BENCH_TIMEOUT,
                             check=False)
        except runner.JobFailed:
            raise SystemExit(f"mpigc bench ps: timed out after {BENCH_TIMEOUT} s") from None
        sys.stdout.write(out.stdout)
        sys.stderr.write(out.stderr)
        return out.returncode
    result = run(cases, args.repeat)
    if result is None:
        return 0
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"progress report: {result['report_us']:.2f} us (N = 64; "
          + ", ".join(f"N = {r['n_workers']}: {r['report_us']:.2f}" for r in result["reports"])
          + f"); read bandwidth {result['read_bandwidth_gbytes_per_s']:.1f} GB/s")
    print(f"{'N':>6}{'d':>9}{'ell':>5}{'MB':>9}{'decode GB/s best/median':>25}"
          f"{'np.add GB/s best/median':>25}{'ratio':>7}{'tail ms':>9}")
    for e in result["decode"]:
        print(f"{e['n_workers']:>6}{e['d']:>9}{e['ell']:>5}{e['received_mbytes']:>9.1f}"
              f"{e['decode_gbytes_per_s']:>16.2f} / {e['decode_gbytes_per_s_median']:>5.2f}"
              f"{e['numpy_add_gbytes_per_s']:>16.2f} / {e['numpy_add_gbytes_per_s_median']:>5.2f}"
              f"{e['decode_vs_numpy_add']:>7.2f}{e['decode_tail_ms']:>9.3f}")
    return 0
