"""``mpigc simulate --replay DIR``: what the protocol alone predicts for a recorded MPI run.

Reads ``DIR/summary.json`` (its ``config`` rebuilds the :class:`~mpigc.schemes.Protocol`)
and ``DIR/iterations.jsonl``. For every iteration, worker i's k-th finished chunk is taken
to end at the sum of its first k measured chunk times (``chunk_times[i]``, processing
order); chunks it did not finish never end. Those times go through the same engine as the
simulator, so the prediction is the time at which the PS trigger would fire if messages,
broadcasts, encoding and decoding took no time and every worker started at 0; unknown
chunk times are exact for this, because only the triggering prefix matters. In deadline
mode the PS decodes at the deadline unless the trigger fires first (as the runtime does).

``overhead_ratio`` = sum of measured iteration times / sum of predicted ones, over the
iterations with a finite prediction (an iteration that ended on the runtime's iteration
timeout, for instance, has none).
"""

import json
from pathlib import Path

import numpy as np

from mpigc.errors import UsageError, require
from mpigc.schemes import build_protocol, get_scheme
from mpigc.sim.engine import Simulator


def _read_json(path):
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None


def read_run(directory):
    """``(summary, records)`` of a recorded run (UsageError naming the bad file or line)."""
    d = Path(directory)
    require(d.is_dir(), f"--replay {directory}: no such directory")
    summary = _read_json(d / "summary.json")
    require(isinstance(summary, dict), f"{d / 'summary.json'} must hold a JSON object")
    path = d / "iterations.jsonl"
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    records = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{path}, line {n}: not valid JSON ({exc})") from None
        for key in ("iteration", "duration_s", "chunk_times"):
            require(isinstance(rec, dict) and key in rec, f"{path}, line {n}: missing {key!r}")
        records.append(rec)
    require(records, f"{path} holds no iteration")
    return summary, records


def protocol_from_summary(summary):
    """Rebuild the run's Protocol from ``summary["config"]`` (or the top-level keys)."""
    cfg = dict(summary.get("config") or {})
    for key, alt in (("scheme", "scheme"), ("workers", "n_workers"), ("load", "load"),
                     ("ell", "ell")):
        cfg.setdefault(key, summary.get(alt))
    require(cfg["scheme"] is not None and cfg["workers"] is not None,
            "summary.json lacks the scheme or the number of workers (n_workers)")
    require(get_scheme(cfg["scheme"]).uses_ps, f"--replay needs a parameter-server scheme; "
            f"this run used {cfg['scheme']}, whose iterations have no trigger to predict")
    p = build_protocol(cfg["scheme"], int(cfg["workers"]), cfg.get("assignment") or "cyclic",
                       cfg.get("load"), int(cfg.get("ell") or 1), cfg.get("ordering") or "optimal",
                       int(cfg.get("seed") or 0), cfg.get("beta") or "gaussian",
                       cfg.get("tolerance"), cfg.get("deadline"))
    recorded = cfg.get("orderings")
    if recorded is not None:
        require([list(map(int, o)) for o in recorded] == p.assignment.orderings,
                "the orderings recorded in summary.json differ from those rebuilt from its "
                "config (ordering file changed?)")
    return p


def chunk_ends(sim, chunk_times, where):
    """(N, L) end times from per-worker lists of measured chunk seconds."""
    require(isinstance(chunk_times, list) and len(chunk_times) == sim.n_workers,
            f"{where}: chunk_times must list {sim.n_workers} workers")
    ends = np.full((sim.n_workers, sim.width), np.inf)
    for i, times in enumerate(chunk_times):
        t = np.asarray(times if times is not None else [], dtype=float)
        require(t.ndim == 1 and len(t) <= sim.loads[i], f"{where}: worker {i} has "
                f"{t.size} chunk times for a load of {sim.loads[i]}")
        require(np.all(np.isfinite(t)) and np.all(t >= 0),
                f"{where}: worker {i} has a negative or non-finite chunk time")
        ends[i, : len(t)] = np.cumsum(t)
    return ends


def replay(directory):
    """:func:`replay_run` of the run recorded in ``directory`` (see :func:`read_run`)."""
    return replay_run(*read_run(directory))


def replay_run(summary, records):
    """Predicted completion of every recorded iteration and the overhead ratio.

    Parameters
    ----------
    summary : dict
        The run's ``summary.json``.
    records : list of dict
        Its ``iterations.jsonl``, one object per iteration, each with ``iteration``,
        ``duration_s`` and ``chunk_times``.

    Returns
    -------
    dict
        ``scheme``, ``n_workers``, ``load``, ``ell``, ``deadline``, ``iterations`` (one
        object per iteration: ``iteration``, ``measured_s``, ``predicted_s`` (null when the
        trigger would never fire), ``trigger``, ``same_state`` (the predicted broadcast
        state equals the recorded one)), ``measured_total_s``, ``predicted_total_s``,
        ``overhead_ratio`` and ``unpredicted`` (iterations left out of the ratio).
    """
    protocol = protocol_from_summary(summary)
    sim = Simulator(protocol)
    rows = []
    for n, rec in enumerate(records, start=1):
        where = f"iterations.jsonl line {n}"
        try:
            ends = chunk_ends(sim, rec["chunk_times"], where)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{where}: bad chunk_times ({exc})") from None
        reports = sim.report_times(ends)
        t, state = sim.decode_point(reports, protocol.deadline)
        recorded = rec.get("state")
        rows.append({
            "iteration": rec["iteration"],
            "measured_s": float(rec["duration_s"]),
            "predicted_s": float(t) if np.isfinite(t) else None,
            "trigger": rec.get("trigger"),
            "same_state": None if recorded is None else bool(np.array_equal(recorded, state)),
        })
    known = [r for r in rows if r["predicted_s"] is not None]
    measured = sum(r["measured_s"] for r in known)
    predicted = sum(r["predicted_s"] for r in known)
    a = protocol.assignment
    return {
        "scheme": protocol.scheme.name, "n_workers": int(a.n_workers),
        "load": int(a.loads.max()), "ell": int(protocol.ell), "deadline": protocol.deadline,
        "iterations": rows,
        "measured_total_s": measured, "predicted_total_s": predicted,
        "overhead_ratio": measured / predicted if predicted > 0 else None,
        "unpredicted": len(rows) - len(known),
    }


def main(args):
    """``mpigc simulate --replay DIR [--json]``."""
    out = replay(args.replay)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"replay of {args.replay}: {out['scheme']}, {out['n_workers']} workers, load "
          f"{out['load']}, ell {out['ell']}")
    print(f"{'iteration':>9} {'measured_s':>12} {'predicted_s':>12} {'ratio':>7}  trigger")
    for r in out["iterations"]:
        p = r["predicted_s"]
        ratio = f"{r['measured_s'] / p:7.3f}" if p else "    n/a"
        pred = f"{p:12.6f}" if p is not None else f"{'never':>12}"
        print(f"{r['iteration']:>9} {r['measured_s']:12.6f} {pred} {ratio}  {r['trigger']}")
    ratio = out["overhead_ratio"]
    print(f"overhead_ratio = {out['measured_total_s']:.6g} / {out['predicted_total_s']:.6g} = "
          f"{ratio:.4f}" if ratio is not None else "overhead_ratio: n/a (nothing predicted)")
    if out["unpredicted"]:
        print(f"{out['unpredicted']} iteration(s) would never trigger on the recorded times "
              f"(left out of the ratio)")
    return 0
