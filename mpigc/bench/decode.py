"""``mpigc bench decode``: ``--decode p2p`` against ``--decode reduce``, interleaved.

One MPI job of N + 1 ranks per worker count N (started with the default launcher). Each
rank holds both engines of each case (N, d, ell): a :class:`~mpigc.runtime.ps.ParameterServer`
on rank 0 and a :class:`~mpigc.runtime.worker.Worker` on the others, one pair built with
``decode_via="p2p"`` and one with ``"reduce"``, on the same communicator. Rank 0 runs
iterations as the training loop does (``Comm.bcast_iteration``, then
``ParameterServer.gather``) in blocks of ``--block`` iterations, alternating the decodes
(p2p, reduce, p2p, reduce, ...: every block of one follows a block of the other, so both
sample the same moments of a shared machine) after one untimed block of each. psgc, cyclic
load 3, no stragglers.

The chunks' compute is a copy of a fixed vector per chunk (no kernel), so that what is
timed is the iteration's communication: model broadcast, progress reports, state
broadcast and the decode, the part the two designs differ in. Each iteration's gradient is
checked against the sum of the chunk vectors (``max_rel_err``).

Reported per case: ``p2p_ms`` and ``reduce_ms`` (median over the blocks of each block's
median iteration), ``reduce_over_p2p`` (median over the pairs of block medians of their
ratio) and every block; per N, ``crossover_d``: the smallest d of the ell = 1 cases from
which on the reduction is faster (ratio < 1) at every larger d measured, None if nowhere.
With more ranks than cores (``oversubscribed``) this compares two decode designs at equal
rank counts on the same cores, not a compute-scaling figure.
"""

import json
import os
import statistics
import sys
import time

import numpy as np

from mpigc import runner
from mpigc.bench.ps import bench_protocol, format_cases, parse_cases
from mpigc.bench.report import medians
from mpigc.errors import require
from mpigc.runtime import launch

DEFAULT_CASES = ("4:10000:1,4:100000:1,4:1000000:1,"
                 "8:10000:1,8:100000:1,8:1000000:1,8:1000000:2,"
                 "16:10000:1,16:100000:1,16:1000000:1")
MODES = ("p2p", "reduce")
JOB_TIMEOUT = 1800


class _FixedChunks:
    """A stand-in for :class:`~mpigc.runtime.worker.ChunkRunner`: chunk j's gradient is a
    fixed vector (seeded by j), so an iteration costs its messages, not a kernel.
    """

    def __init__(self, chunks, d, seed):
        self.vectors = {j: chunk_vector(j, d, seed) for j in chunks}

    def run(self, chunk, w, factor, grad, interrupted, sleep_slice=None):
        t0 = time.perf_counter()
        grad[:] = self.vectors[chunk]
        if interrupted():
            return None
        return float(chunk), time.perf_counter() - t0


def chunk_vector(j, d, seed):
    """The gradient of chunk ``j`` (the same on every rank)."""
    return np.random.default_rng([seed, j]).standard_normal(d)


def _engines(comm, n, d, ell, seed):
    """``{mode: engine}`` of this rank for one case (ParameterServer or Worker)."""
    from mpigc.runtime.ps import ParameterServer
    from mpigc.runtime.worker import Worker
    from mpigc.stragglers import parse_stragglers

    engines = {}
    for mode in MODES:
        protocol = bench_protocol(n, ell, mode)
        if comm.rank == 0:
            engines[mode] = ParameterServer(comm, protocol, np.ones(protocol.assignment.n_chunks), d)
        else:
            worker = comm.rank - 1
            chunks = _FixedChunks(protocol.assignment.chunks(worker), d, seed)
            engines[mode] = Worker(comm, protocol, worker, chunks,
                                   parse_stragglers("none", n), d)
    return engines


def schedule(pairs):
    """Mode of every block: one untimed block of each, then ``pairs`` alternating pairs."""
    return [m for _ in range(pairs + 1) for m in MODES]


def run_case(comm, n, d, ell, pairs, block, seed, first_iteration):
    """One case, collective; ``(entry or None off rank 0, next iteration number)``."""
    from mpigc.runtime.commands import Command

    engines = _engines(comm, n, d, ell, seed)
    t = first_iteration
    blocks = {m: [] for m in MODES}
    err = dict.fromkeys(MODES, 0.0)
    if comm.rank == 0:
        m = engines["p2p"].protocol.assignment.n_chunks
        expected = sum(chunk_vector(j, d, seed) for j in range(m))
        scale = np.linalg.norm(expected)
        w = np.zeros(d)
        for k, mode in enumerate(schedule(pairs)):
            times = []
            for _ in range(block):
                start = time.perf_counter()
                comm.bcast_iteration(d, t, Command.CONTINUE, w)
                grad = engines[mode].gather(t, w).grad
                times.append(time.perf_counter() - start)
                engines[mode].record(times[-1])  # as the training loop: the timeouts' median
                t += 1
                rel = np.linalg.norm(grad - expected) / scale
                err[mode] = max(err[mode], float(rel))
            if k >= len(MODES):
                blocks[mode].append(statistics.median(times))
        comm.bcast_iteration(d, t, Command.STOP, w)
    else:
        for mode in schedule(pairs):
            for _ in range(block):
                t, command, w = comm.bcast_iteration(d)
                engines[mode].iterate(t, w)
        comm.bcast_iteration(d)  # the stop: no iteration posts another broadcast
    t += 1
    if comm.rank != 0:
        return None, t
    ms = {mode: [b * 1e3 for b in blocks[mode]] for mode in MODES}
    median = medians(ms)
    return {"n_workers": n, "d": d, "ell": ell,
            "p2p_ms": median["p2p"], "reduce_ms": median["reduce"],
            "reduce_over_p2p": statistics.median(r / p for p, r in zip(ms["p2p"], ms["reduce"])),
            "p2p_ms_blocks": ms["p2p"], "reduce_ms_blocks": ms["reduce"],
            "max_rel_err": err}, t


def crossover(entries):
    """Per N: the smallest d (ell = 1) from which on ``reduce_over_p2p < 1`` (or None)."""
    out = {}
    for n in sorted({e["n_workers"] for e in entries}):
        mine = sorted((e for e in entries if e["n_workers"] == n and e["ell"] == 1),
                      key=lambda e: e["d"])
        found = None
        for e in reversed(mine):
            if e["reduce_over_p2p"] >= 1:
                break
            found = e["d"]
        out[str(n)] = found
    return out


def run(cases, pairs, block, seed=0):
    """The cases of one N on this job's ranks (collective); the list of entries on rank 0."""
    from mpigc.runtime import comm as mpicomm

    comm = mpicomm.world()
    n = comm.size - 1
    require(all(c[0] == n for c in cases),
            f"mpigc bench decode: cases for N = {sorted({c[0] for c in cases})} workers in a job "
            f"of {comm.size} ranks")
    comm.connect(n)
    entries, t = [], 0
    for _, d, ell in cases:
        entry, t = run_case(comm, n, d, ell, pairs, block, seed, t)
        entries.append(entry)
    comm.finish()
    return entries if comm.rank == 0 else None


def _job(n, cases, pairs, block):
    """Start the MPI job of ``n`` workers; its entries."""
    cmd = runner.mpigc_command(n + 1, "bench", "decode", "--cases", format_cases(cases),
                               "--pairs", pairs, "--block", block, "--json")
    try:  # runner.run kills every rank of the job at the timeout or an interrupt
        out = runner.run(cmd, JOB_TIMEOUT, check=False)
    except runner.JobFailed:
        raise SystemExit(f"mpigc bench decode: the job of N = {n} timed out after "
                         f"{JOB_TIMEOUT} s") from None
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"mpigc bench decode: the job of N = {n} failed "
                         f"(exit status {out.returncode})")
    return json.loads(out.stdout)


def main(args):
    """``mpigc bench decode``: one job per N, then the table (or JSON) of every case."""
    cases = parse_cases(args.cases or DEFAULT_CASES)
    require(all(c[0] >= 2 for c in cases), "--cases: every N must be >= 2 (a reduction "
            "over workers)")
    require(args.pairs >= 1, f"--pairs must be >= 1, got {args.pairs}")
    require(args.block >= 1, f"--block must be >= 1, got {args.block}")
    if launch.launcher_size() is not None:  # one rank of a job
        entries = run(cases, args.pairs, args.block)
        if entries is not None:  # what chose the reduction's algorithm, and the yield
            mpi = {k: v for k, v in sorted(os.environ.items()) if k.startswith("MPIR_CVAR_")}
            print(json.dumps({"cases": entries, "mpi_settings": mpi}))
        return 0
    entries, mpi = [], {}
    for n in sorted({c[0] for c in cases}):
        job = _job(n, [c for c in cases if c[0] == n], args.pairs, args.block)
        entries += job["cases"]
        mpi[str(n)] = job["mpi_settings"]
    cores, ranks = launch.available_cores(), max(c[0] for c in cases) + 1
    result = {"cases": entries, "crossover_d": crossover(entries), "pairs": args.pairs,
              "block": args.block, "cores": cores,
              "oversubscribed": ranks > cores, "mpi_settings": mpi}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'N':>4}{'d':>9}{'ell':>5}{'p2p ms':>10}{'reduce ms':>11}{'reduce/p2p':>12}"
          f"{'max rel err':>13}")
    for e in entries:
        print(f"{e['n_workers']:>4}{e['d']:>9}{e['ell']:>5}{e['p2p_ms']:>10.2f}"
              f"{e['reduce_ms']:>11.2f}{e['reduce_over_p2p']:>12.3f}"
              f"{max(e['max_rel_err'].values()):>13.1e}")
    print("crossover (smallest d from which reduce is faster): " + ", ".join(
        f"N = {n}: {d if d is not None else 'none'}" for n, d in result["crossover_d"].items()))
    if result["oversubscribed"]:
        print(f"({ranks} ranks on {cores} cores: two decode designs at "
              f"equal rank counts, not a compute-scaling figure)")
    return 0

