"""``mpigc simulate``: run the protocol without MPI, or replay a recorded MPI run.

Exact mode (no ``--deadline``) reports the completion time of each trial: when the
scheme's trigger fires. Deadline mode (``--deadline T``) decodes the state the PS knows at
T, or earlier if the trigger fires first (as the runtime does), and reports the decoding
error and the fraction of chunks recovered. Time is counted
in chunks: a worker with slowdown factor F finishes its k-th chunk at k F, so
``--deadline`` is in the same unit (not seconds, unlike ``mpigc train``).
"""

import json
import math
import time

import numpy as np

from mpigc.errors import require
from mpigc.schemes import build_protocol
from mpigc.sim.engine import DEFAULT_DIM, simulate
from mpigc.stragglers import parse_stragglers


def _stats(values):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return None, None
    return float(v.mean()), float(v.std())


def summarise(protocol, result, *, stragglers, seed, deadline, elapsed_s):
    """The JSON object of ``mpigc simulate --json`` from a :func:`simulate` result.

    ``completion_mean``/``completion_std`` are over the decodable trials (``decoded_trials``
    of ``trials``; null when none was); ``mse_*`` and ``recovered_mean`` over the trials
    where the decode was measured (``mse_trials``).
    """
    a = protocol.assignment
    loads = np.unique(a.loads)
    completion = result["completion"]
    c_mean, c_std = _stats(completion)
    m_mean, m_std = _stats(result["mse"])
    r_mean, _ = _stats(result["recovered"])
    return {
        "mode": "exact" if deadline is None else "deadline",
        "scheme": protocol.scheme.name,
        "workers": int(a.n_workers),
        "chunks": int(a.n_chunks),
        "load": int(loads[0]) if len(loads) == 1 else [int(x) for x in loads],
        "ell": int(protocol.ell),
        "tolerance": int(protocol.tolerance),
        "stragglers": stragglers,
        "seed": int(seed),
        "deadline": deadline,
        "trials": int(len(completion)),
        "decoded_trials": int(np.isfinite(completion).sum()),
        "completion_mean": c_mean,
        "completion_std": c_std,
        "mse_mean": m_mean,
        "mse_std": m_std,
        "mse_trials": int(len(result["mse"])),
        "recovered_mean": r_mean,
        "gradient_dim": DEFAULT_DIM,
        "elapsed_s": round(elapsed_s, 3),
    }


def _fmt(x):
    return "n/a" if x is None else f"{x:.6g}"


def print_summary(s):
    """Human-readable lines of a :func:`summarise` object."""
    print(f"{s['scheme']}: {s['workers']} workers, load {s['load']}, ell {s['ell']}, "
          f"stragglers {s['stragglers']}, {s['trials']} trials ({s['mode']} mode)")
    if s["mode"] == "exact":
        print(f"completion time (chunks): mean {_fmt(s['completion_mean'])}, "
              f"std {_fmt(s['completion_std'])}, decodable in {s['decoded_trials']} of "
              f"{s['trials']} trials")
    else:
        print(f"deadline {s['deadline']:g} chunk times; decoded after {_fmt(s['completion_mean'])}"
              f" on average (earlier when the trigger fires first)")
    print(f"decode error ||g_hat - g||^2/||g||^2: mean {_fmt(s['mse_mean'])}, std "
          f"{_fmt(s['mse_std'])} over {s['mse_trials']} trials; chunks recovered "
          f"{_fmt(s['recovered_mean'])}")
    print(f"elapsed {s['elapsed_s']:.2f} s")


def _cost_main(args, stragglers, start):
    """``--cost-model``: seconds per iteration, protocol plus the PS's and network costs."""
    from mpigc.sim.cost import IB_BANDWIDTH_BYTES_PER_S, IB_LATENCY_S, CostModel, iteration_seconds

    require(args.chunk_time is not None and math.isfinite(args.chunk_time)
            and args.chunk_time > 0, f"--cost-model needs --chunk-time SECONDS > 0, got "
            f"{args.chunk_time}")
    require(args.dim >= 1, f"--dim must be >= 1, got {args.dim}")
    latency = IB_LATENCY_S if args.latency is None else args.latency
    bandwidth = IB_BANDWIDTH_BYTES_PER_S if args.bandwidth is None else args.bandwidth
    require(math.isfinite(bandwidth) and bandwidth > 0,
            f"--bandwidth must be a positive number of bytes per second, got {bandwidth}")
    cost = CostModel.from_file(args.cost_model, latency_s=latency, bandwidth_bytes_per_s=bandwidth)
    deadline = None if args.deadline is None else args.deadline / args.chunk_time
    protocol = build_protocol(args.scheme, args.workers, args.assignment, args.load, args.ell,
                              args.ordering, args.seed, args.beta, args.straggler_tolerance, deadline,
                              decode_via=args.decode)
    seconds = iteration_seconds(protocol, stragglers, args.trials, cost, args.dim,
                                args.chunk_time)
    finite = seconds[np.isfinite(seconds)]
    s = {"mode": "cost-model", "scheme": protocol.scheme.name, "workers": args.workers,
         "load": int(protocol.assignment.loads.max()), "ell": protocol.ell,
         "decode": args.decode, "dim": args.dim, "chunk_time": args.chunk_time,
         "stragglers": args.stragglers, "seed": args.seed, "trials": args.trials,
         "latency_s": latency, "bandwidth_bytes_per_s": bandwidth,
         "iteration_s_mean": float(finite.mean()) if len(finite) else None,
         "iteration_s_median": float(np.median(finite)) if len(finite) else None,
         "decoded_trials": int(len(finite)), "elapsed_s": round(time.perf_counter() - start, 3)}
    if args.json:
        print(json.dumps(s))
    else:
        print(f"{s['scheme']} ({s['decode']}): {s['workers']} workers, d = {s['dim']}, chunk "
              f"{s['chunk_time']:g} s: mean {_fmt(s['iteration_s_mean'])} s per iteration, "
              f"median {_fmt(s['iteration_s_median'])} s ({s['trials']} trials)")
    return 0


def main(args):
    """Entry point of ``mpigc simulate`` (arguments from :mod:`mpigc.cli`)."""
    if args.replay is not None:
        from mpigc.sim.replay import main as replay_main
        return replay_main(args)
    start = time.perf_counter()
    require(args.workers >= 1, f"--workers must be >= 1, got {args.workers}")
    require(args.trials >= 1, f"--trials must be >= 1, got {args.trials}")
    require(args.seed >= 0, f"--seed must be >= 0, got {args.seed}")
    if args.deadline is not None:
        require(math.isfinite(args.deadline) and args.deadline > 0,
                f"--deadline must be a positive number of chunk times, got {args.deadline}")
    stragglers = parse_stragglers(args.stragglers, args.workers, args.seed)
    if args.cost_model is not None:
        return _cost_main(args, stragglers, start)
    require(args.chunk_time is None and args.latency is None and args.bandwidth is None
            and args.decode == "p2p", "--chunk-time, --latency, --bandwidth and --decode "
            "need --cost-model FILE")
    protocol = build_protocol(args.scheme, args.workers, args.assignment, args.load, args.ell,
                              args.ordering, args.seed, args.beta, args.straggler_tolerance,
                              args.deadline)
    result = simulate(protocol, stragglers, args.trials, deadline=args.deadline, seed=args.seed)
    s = summarise(protocol, result, stragglers=args.stragglers, seed=args.seed,
                  deadline=args.deadline, elapsed_s=time.perf_counter() - start)
    if args.json:
        print(json.dumps(s))
    else:
        print_summary(s)
    return 0
