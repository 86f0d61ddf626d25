"""Seconds per iteration: the protocol's timing plus the PS's and the network's costs.

The discrete-event engine (:mod:`mpigc.sim.engine`) says when each progress report is
sent and when the trigger fires, in chunk times. :class:`CostModel` turns that into
seconds of a real run, adding what the protocol alone leaves out:

* the model broadcast and the state broadcast, as functions of N (binomial tree for short
  messages, scatter + allgather for long ones: ``log2(P) alpha + 2 (P-1)/P n beta``);
* the PS's cost per progress report (``report_us`` of ``mpigc bench ps``), served one at a
  time: a burst of N reports queues at rank 0;
* the vectors' transfer into rank 0, ``N_senders d/ell`` doubles over one link, overlapped
  with the decode at ``decode_gbytes_per_s``, then the decode tail (``decode_tail_ms``,
  scaled with the vector length); or, with ``--decode reduce``, one reduction of ``d``
  values (``log2(P) alpha + 2 (P-1)/P n beta`` plus the additions);
* allreduce: the slowest worker, then one allreduce of ``d`` values (Rabenseifner:
  ``2 log2(P) alpha + 2 (P-1)/P n beta`` plus the additions).

Network defaults are those of a typical InfiniBand cluster (EDR/HDR100 with MPI over
verbs): :data:`IB_LATENCY_S` per message and :data:`IB_BANDWIDTH_BYTES_PER_S` per link.
"""

import json
import math
from dataclasses import dataclass

import numpy as np

from mpigc.coding.decode import GROUP
from mpigc.errors import UsageError, require

IB_LATENCY_S = 2e-6             # MPI point-to-point latency over InfiniBand, small messages
IB_BANDWIDTH_BYTES_PER_S = 12.5e9  # 100 Gb/s per link (EDR, HDR100)
# Short messages go down a binomial tree, long ones are scattered and gathered (MPICH's
# switch for broadcasts is at 12 KiB).
LONG_MESSAGE_BYTES = 12288
# Values the PS touches per model coordinate after the decode (add l2 w, optimizer step,
# copies): a few passes over d doubles at the read bandwidth.
UPDATE_PASSES = 6


@dataclass(frozen=True)
class CostModel:
    """The PS's measured costs and the network's parameters (seconds, bytes per second).

    Parameters
    ----------
    report_s : float
        Rank 0's time per progress report (receive, tracker, trigger).
    decode_bytes_per_s : float
        Rate of the streaming decode (bytes of received vectors per second).
    tail_s_per_byte : float
        Decode tail per byte of one vector (``decode_tail_ms`` / vector bytes).
    read_bytes_per_s : float
        One core's read bandwidth (the updates and the reductions' additions).
    latency_s, bandwidth_bytes_per_s : float
        Network: per message, per link.
    """

    report_s: float
    decode_bytes_per_s: float
    tail_s_per_byte: float
    read_bytes_per_s: float
    latency_s: float = IB_LATENCY_S
    bandwidth_bytes_per_s: float = IB_BANDWIDTH_BYTES_PER_S

    @classmethod
    def from_bench(cls, bench, latency_s=IB_LATENCY_S, bandwidth_bytes_per_s=IB_BANDWIDTH_BYTES_PER_S):
        """From the JSON object of ``mpigc bench ps --json``: the decode case with the most
        received bytes gives the rate and the tail.
        """
        try:
            case = max(bench["decode"], key=lambda e: e["received_mbytes"])
            vector_bytes = case["received_mbytes"] * 1e6 / case["n_workers"]
            model = cls(report_s=float(bench["report_us"]) * 1e-6,
                        decode_bytes_per_s=float(case["decode_gbytes_per_s"]) * 1e9,
                        tail_s_per_byte=float(case["decode_tail_ms"]) * 1e-3 / vector_bytes,
                        read_bytes_per_s=float(bench["read_bandwidth_gbytes_per_s"]) * 1e9,
                        latency_s=float(latency_s),
                        bandwidth_bytes_per_s=float(bandwidth_bytes_per_s))
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise UsageError(f"cost model: not the output of 'mpigc bench ps --json' "
                             f"({type(exc).__name__}: {exc})") from None
        for name in ("report_s", "decode_bytes_per_s", "tail_s_per_byte", "read_bytes_per_s",
                     "bandwidth_bytes_per_s"):
            value = getattr(model, name)
            require(math.isfinite(value) and value > 0, f"cost model: {name} must be a "
                    f"positive number, got {value}")
        require(math.isfinite(model.latency_s) and model.latency_s >= 0,
                f"--latency must be a finite number >= 0, got {latency_s}")
        return model

    @classmethod
    def from_file(cls, path, **network):
        """The model of the JSON file of ``mpigc bench ps --json`` at ``path``."""
        try:
            with open(path) as f:
                bench = json.load(f)
        except OSError as exc:
            raise UsageError(f"--cost-model {path}: cannot read it ({exc.strerror})") from None
        except ValueError as exc:
            raise UsageError(f"--cost-model {path}: not valid JSON ({exc})") from None
        require(isinstance(bench, dict), f"--cost-model {path}: must hold a JSON object")
        return cls.from_bench(bench, **network)

    # -- collectives over P ranks, n bytes ---------------------------------------------
    def bcast(self, ranks, nbytes):
        """Binomial tree for short messages, scatter + allgather for long ones."""
        hops = math.ceil(math.log2(max(ranks, 2)))
        if nbytes < LONG_MESSAGE_BYTES:
            return hops * (self.latency_s + nbytes / self.bandwidth_bytes_per_s)
        return hops * self.latency_s + 2 * (ranks - 1) / ranks * nbytes / self.bandwidth_bytes_per_s

    def reduce(self, ranks, nbytes):
        """Reduce-scatter + gather (Rabenseifner), the additions spread over the ranks."""
        hops = math.ceil(math.log2(max(ranks, 2)))
        share = (ranks - 1) / ranks * nbytes
        return (hops * self.latency_s + 2 * share / self.bandwidth_bytes_per_s
                + share / self.read_bytes_per_s)

    def allreduce(self, ranks, nbytes):
        """A reduction followed by the broadcast of the result."""
        return self.reduce(ranks, nbytes) + math.ceil(math.log2(max(ranks, 2))) * self.latency_s

    # -- one iteration ------------------------------------------------------------------
    def update_s(self, d):
        """Seconds of the optimizer's update of a model of dimension ``d``."""
        return UPDATE_PASSES * 8 * d / self.read_bytes_per_s

    def ps_iteration(self, reports, t_fire, state, protocol, d, chunk_time):
        """Seconds of one PS iteration.

        ``reports``: (N, L) send times of the progress reports in chunk times (``inf``:
        none), ``t_fire``: the trigger's time, ``state``: the broadcast state.
        """
        n = protocol.n_workers
        ranks = n + 1
        start = self.bcast(ranks, 8 * (d + 2))
        arrive = np.sort(reports[np.isfinite(reports) & (reports <= t_fire)]) * chunk_time
        arrive = arrive + start + self.latency_s
        # rank 0 serves reports one at a time: the k-th is done at max_j<=k (a_j) + ...
        k = np.arange(len(arrive), 0, -1)
        fired = float(np.max(arrive + k * self.report_s)) if len(arrive) else start
        fired += self.bcast(ranks, 8 * (n + 1))
        b = -(-d // protocol.ell)
        senders = int(np.count_nonzero(state))
        if protocol.decode_via == "reduce":
            gather = self.reduce(ranks, 8 * b * protocol.ell)
        else:
            ingress = senders * 8 * b
            last = min(senders, GROUP) * 8 * b
            gather = (self.latency_s + max(ingress / self.bandwidth_bytes_per_s,
                                           (ingress - last) / self.decode_bytes_per_s)
                      + last / self.decode_bytes_per_s + self.tail_s_per_byte * 8 * b)
        return fired + gather + self.update_s(d)

    def allreduce_iteration(self, factors, d, chunk_time, n_workers):
        """Seconds of one allreduce iteration: model broadcast, slowest chunk, allreduce."""
        ranks = n_workers + 1
        return (self.bcast(ranks, 8 * (d + 2)) + float(np.max(factors)) * chunk_time
                + self.allreduce(ranks, 8 * (d + 1 + n_workers)) + self.update_s(d))


def iteration_seconds(protocol, stragglers, trials, cost, d, chunk_time):
    """(trials,) predicted seconds per iteration (trial t: the factors of iteration t)."""
    from mpigc.sim.engine import Simulator

    if not protocol.scheme.uses_ps:
        n = protocol.n_workers
        return np.array([cost.allreduce_iteration(stragglers.factors(t), d, chunk_time, n)
                         for t in range(trials)])
    sim = Simulator(protocol)
    out = np.empty(trials)
    for t in range(trials):
        reports = sim.report_times(sim.ends_from_factors(stragglers.factors(t)))
        t_fire, state = sim.decode_point(reports, protocol.deadline)
        out[t] = (cost.ps_iteration(reports, t_fire, state, protocol, d, chunk_time)
                  if np.isfinite(t_fire) else np.inf)
    return out
