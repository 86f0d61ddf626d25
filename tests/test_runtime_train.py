"""``mpigc train`` under mpiexec: every scheme, exactness, outputs, stale messages.

Small worlds (3-4 workers), a few iterations, each run with a timeout.
"""

import numpy as np
import pytest

from mpiutil import train

STRAGGLERS = "bimodal:p=0.3,slowdown=4"
SMALL = "synthetic:n=1200,d=24,seed=3"
SUMMARY_KEYS = {"scheme", "n_workers", "load", "ell", "iterations", "mean_iteration_s",
                "median_iteration_s", "total_s", "final_loss", "max_grad_rel_err",
                "mpi_library", "config"}
RECORD_KEYS = {"iteration", "duration_s", "trigger", "state", "loss", "grad_rel_err",
               "chunk_times", "recovered_fraction"}
CONFIG_KEYS = {"scheme", "assignment", "load", "ell", "ordering", "seed", "tolerance",
               "deadline", "beta", "workers", "stragglers", "chunk_time", "data", "model"}


def _reference_losses(records):
    return np.array([r["loss"] for r in records])


def _min_cover(state, orderings):
    """How many workers the broadcast state counts for its least-covered chunk (these
    runs have as many chunks as workers)."""
    cover = np.zeros(len(orderings), int)
    for i, s in enumerate(state):
        cover[orderings[i][:s]] += 1
    return cover.min()


@pytest.fixture(scope="module")
def uncoded(tmp_path_factory):
    """The uncoded run every exact scheme is compared with (same data, seed, stragglers)."""
    out = tmp_path_factory.mktemp("uncoded")
    return train(4, ["--scheme", "uncoded", "--data", SMALL, "--iterations", 6,
                     "--stragglers", STRAGGLERS, "--chunk-time", 0.002, "--verify"], out)


@pytest.mark.parametrize("scheme", ["psgc", "gc", "gc-cover", "uncoded", "allreduce"])
def test_exact_schemes_decode_the_exact_gradient(scheme, uncoded, tmp_path):
    summary, records = train(4, ["--scheme", scheme, "--data", SMALL, "--iterations", 6,
                                 "--stragglers", STRAGGLERS, "--chunk-time", 0.002,
                                 "--verify"], tmp_path)
    assert SUMMARY_KEYS <= set(summary) and CONFIG_KEYS <= set(summary["config"])
    assert summary["scheme"] == scheme and summary["n_workers"] == 4
    assert summary["iterations"] == 6 and len(records) == 6
    assert summary["mpi_library"].startswith(("MPICH", "Open MPI"))
    assert summary["max_grad_rel_err"] <= 1e-10
    orderings = summary["config"]["orderings"]
    for t, r in enumerate(records):
        assert RECORD_KEYS <= set(r) and r["iteration"] == t
        assert len(r["state"]) == 4 and len(r["chunk_times"]) == 4
        assert r["grad_rel_err"] <= 1e-10 and r["recovered_fraction"] == 1.0
        assert r["duration_s"] > 0
        # the broadcast state covers every chunk; chunk times exist for what it counts
        assert _min_cover(r["state"], orderings) >= 1
        assert all(len(ct) >= s for ct, s in zip(r["chunk_times"], r["state"]))
    # exact gradients: the same trajectory as uncoded, iteration by iteration
    ref = _reference_losses(uncoded[1])
    np.testing.assert_allclose(_reference_losses(records), ref, rtol=1e-9, atol=0)
    assert summary["final_loss"] == pytest.approx(uncoded[0]["final_loss"], rel=1e-9)
    assert summary["final_loss"] < records[0]["loss"]


@pytest.mark.parametrize("ell", [2, 3])  # ell = 1: psgc above
def test_psgc_exact_for_every_ell(ell, uncoded, tmp_path):
    summary, records = train(4, ["--scheme", "psgc", "--load", 3, "--ell", ell, "--data", SMALL,
                                 "--iterations", 6, "--stragglers", STRAGGLERS,
                                 "--chunk-time", 0.002, "--verify"], tmp_path)
    assert summary["ell"] == ell
    assert summary["max_grad_rel_err"] <= 1e-10
    assert all(r["trigger"] == "exact" for r in records)
    # every chunk was processed by >= ell reporting workers in the broadcast state
    orderings = summary["config"]["orderings"]
    for r in records:
        assert _min_cover(r["state"], orderings) >= ell
        # chunk times measured for at least the chunks the state counts
        assert all(len(ct) >= s for ct, s in zip(r["chunk_times"], r["state"]))
    np.testing.assert_allclose(_reference_losses(records), _reference_losses(uncoded[1]),
                               rtol=1e-9, atol=0)


def test_psgc_uses_partial_work(tmp_path):
    """Under stragglers psgc decodes from workers that finished only part of their chunks
    (how much faster that is, is measured by ``mpigc bench stragglers``)."""
    common = ["--data", SMALL, "--iterations", 6, "--chunk-time", 0.01,
              "--stragglers", "bimodal:p=0.3,slowdown=6"]
    psgc, records = train(4, ["--scheme", "psgc"] + common, tmp_path / "p")
    assert any(0 < s < 3 for r in records for s in r["state"])
    assert psgc["max_grad_rel_err"] is None


def test_ignore_stragglers_rescales_what_it_got(tmp_path):
    summary, records = train(4, ["--scheme", "ignore-stragglers", "--data", SMALL,
                                 "--iterations", 4, "--tolerance", 1, "--verify",
                                 "--stragglers", "persistent:frac=0.25,slowdown=100",
                                 "--chunk-time", 0.002], tmp_path)
    for r in records:
        assert sorted(r["state"]) == [0, 1, 1, 1]
        assert r["recovered_fraction"] == 0.75 and r["grad_rel_err"] > 1e-6


def test_stale_progress_of_a_lagging_worker_never_counts(uncoded, tmp_path):
    summary, records = train(4, ["--scheme", "psgc", "--data", SMALL, "--iterations", 6,
                                 "--stragglers", STRAGGLERS, "--chunk-time", 0.002,
                                 "--verify"], tmp_path, script="lagging_worker.py")
    assert all(r["state"][0] == 0 for r in records)
    assert summary["stale_messages"] > 0
    assert summary["max_grad_rel_err"] <= 1e-10
    np.testing.assert_allclose(_reference_losses(records), _reference_losses(uncoded[1]),
                               rtol=1e-9, atol=0)


@pytest.mark.parametrize("scheme,ell", [("psgc", 2), ("gc", 1)])
def test_decode_reduce_is_exact(scheme, ell, uncoded, tmp_path):
    """--decode reduce: the weighted vectors summed by an MPI reduction (Tandon's
    least-squares weights for gc) give the exact gradient and uncoded's trajectory."""
    summary, records = train(4, ["--scheme", scheme, "--ell", ell, "--decode", "reduce",
                                 "--data", SMALL, "--iterations", 6, "--stragglers", STRAGGLERS,
                                 "--chunk-time", 0.002, "--verify"], tmp_path)
    assert summary["config"]["decode"] == "reduce"
    assert summary["max_grad_rel_err"] <= 1e-10
    assert all(r["recovered_fraction"] == 1.0 for r in records)
    np.testing.assert_allclose(_reference_losses(records), _reference_losses(uncoded[1]),
                               rtol=1e-9, atol=0)
