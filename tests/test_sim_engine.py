"""Simulator engine: fast path == event loop, reference values of SPEC section 7, decoding."""

import numpy as np
import pytest

from mpigc.schemes import build_protocol
from mpigc.sim.engine import Simulator, event_loop_completion, simulate
from mpigc.stragglers import parse_stragglers

SHIFTED = "shifted-exp:shift=1,rate=1"

CASES = [  # scheme, N, assignment, load, ell, ordering
    ("psgc", 6, "cyclic", 3, 1, "optimal"), ("psgc", 7, "cyclic", 3, 2, "random"),
    ("psgc", 8, "regular", 3, 3, "optimal"), ("psgc", 6, "frc", 3, 2, "natural"),
    ("psgc", 9, "regular", 4, 2, "random"), ("gc", 6, "cyclic", 3, 1, "optimal"),
    ("gc", 8, "cyclic", 4, 2, "optimal"), ("gc", 6, "frc", 2, 1, "natural"),
    ("gc-cover", 7, "cyclic", 3, 2, "optimal"), ("gc-cover", 8, "regular", 3, 1, "random"),
    ("ignore-stragglers", 6, "cyclic", None, 1, "optimal"),
    ("uncoded", 5, "cyclic", None, 1, "optimal"),
]
MODELS = [SHIFTED, "bimodal:p=0.4,slowdown=3", "none", "fail:p=0.3+exp:mean=1",
          "persistent:frac=0.3,slowdown=2+pareto:alpha=1.5"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_fast_path_equals_event_loop(case):
    scheme, n, assignment, load, ell, ordering = case
    p = build_protocol(scheme, n, assignment, load, ell, ordering, seed=n)
    sim = Simulator(p)
    for m, spec in enumerate(MODELS):
        model = parse_stragglers(spec, n, seed=m)
        for t in range(30):
            reports = sim.report_times(sim.ends_from_factors(model.factors(t)))
            fast_t, fast_s = sim.completion(reports)
            ref_t, ref_s = event_loop_completion(sim, reports)
            assert fast_t == ref_t, (spec, t)
            np.testing.assert_array_equal(fast_s, ref_s)


def test_wrong_proposal_is_overruled_by_the_shared_rule(monkeypatch):
    p = build_protocol("psgc", 7, "cyclic", 3, 2)
    sim = Simulator(p)
    model = parse_stragglers(SHIFTED, 7, 0)
    reports = sim.report_times(sim.ends_from_factors(model.factors(0)))
    right = sim.completion(reports)[0]
    for wrong in (right * 0.9, right * 1.1, np.inf, None):
        monkeypatch.setattr(sim, "proposed_completion", lambda r, w=wrong: w)
        assert sim.completion(reports)[0] == right


def test_psgc_cyclic_matches_a_closed_form():
    # cyclic load L, natural order: worker j - k holds chunk j at position k + 1, so chunk j is
    # covered ell times at the ell-th smallest of (k + 1) F_{j-k}; completion = max over chunks
    n, load, ell = 11, 4, 2
    p = build_protocol("psgc", n, "cyclic", load, ell, "natural")
    model = parse_stragglers(SHIFTED, n, 2)
    got = simulate(p, model, 200, check_trials=0)["completion"]
    F = np.stack([model.factors(t) for t in range(200)])
    times = np.stack([(k + 1) * np.roll(F, k, axis=1) for k in range(load)], axis=2)
    np.testing.assert_allclose(got, np.sort(times, axis=2)[:, :, ell - 1].max(axis=1))


def test_gc_on_frc_matches_the_group_rule_in_closed_form():
    # fractional repetition, load L: group g decodes when its fastest worker (its ell-th
    # fastest) finishes, at L F_i; gc completes at the slowest group's time (replication.py)
    n, load = 12, 3
    model = parse_stragglers("bimodal:p=0.25,slowdown=8+exp:mean=0.1", n, 5)
    F = np.stack([model.factors(t) for t in range(200)])
    by_group = np.sort(load * F.reshape(200, n // load, load), axis=2)
    for ell in (1, 2):
        gc = simulate(build_protocol("gc", n, "frc", load, ell), model, 200)
        np.testing.assert_allclose(gc["completion"], by_group[:, :, ell - 1].max(axis=1))
        assert np.all(gc["mse"] < 1e-20)
    gc_1 = simulate(build_protocol("gc", n, "frc", load), model, 200)["completion"]
    cover = simulate(build_protocol("gc-cover", n, "frc", load), model, 200)["completion"]
    np.testing.assert_array_equal(gc_1, cover)  # the same rule at ell = 1
    # the old "any N - s finished" rule: the (N - s)-th finish, later in most trials
    n_minus_s = np.sort(load * F, axis=1)[:, n - load]
    assert np.all(gc_1 <= n_minus_s) and np.mean(gc_1 < n_minus_s) > 0.5


@pytest.mark.parametrize("ell, psgc_ref, gc_ref", [(1, 3.55, 11.06), (2, 6.02, 12.41)])
def test_reference_values_of_spec_section_7(ell, psgc_ref, gc_ref):
    model = parse_stragglers(SHIFTED, 20, 0)
    means = {}
    for scheme, ref in (("psgc", psgc_ref), ("gc", gc_ref)):
        p = build_protocol(scheme, 20, "cyclic", 4, ell)
        means[scheme] = simulate(p, model, 2000, check_trials=0)["completion"].mean()
        assert means[scheme] == pytest.approx(ref, rel=0.03)
    assert means["gc"] >= (2.5 if ell == 1 else 1.9) * means["psgc"]


@pytest.mark.parametrize("scheme, ell", [("psgc", 1), ("psgc", 3), ("gc", 1), ("gc", 2),
                                         ("gc-cover", 2), ("ignore-stragglers", 1)])
def test_exact_mode_decodes_exactly(scheme, ell):
    p = build_protocol(scheme, 10, "cyclic", None if scheme == "ignore-stragglers" else 4, ell)
    r = simulate(p, parse_stragglers(SHIFTED, 10, 1), 40, check_trials=40)
    assert len(r["mse"]) == 40
    if scheme == "ignore-stragglers":  # drops s chunks, rescales: never exact
        assert np.all(r["mse"] > 1e-6) and np.all(r["recovered"] < 1)
    else:
        assert np.all(r["mse"] < 1e-20) and np.all(r["recovered"] == 1.0)
        assert np.all([p.code.decodable(s) for s in r["states"]])


def test_deadline_mode_limits():
    p = build_protocol("psgc", 10, "cyclic", 3, 2)
    model = parse_stragglers(SHIFTED, 10, 0)  # every factor >= 1: nothing ends before 1
    early = simulate(p, model, 10, deadline=0.99)
    assert np.all(early["states"] == 0) and np.allclose(early["mse"], 1.0)
    assert np.all(early["recovered"] == 0)
    # the trigger fires before a late deadline: the PS decodes then, exactly (as the runtime)
    late = simulate(p, model, 10, deadline=1e9)
    exact = simulate(p, model, 10)
    np.testing.assert_array_equal(late["completion"], exact["completion"])
    np.testing.assert_array_equal(late["states"], exact["states"])
    assert np.all(late["mse"] < 1e-20) and np.all(late["recovered"] == 1)
    mid = simulate(p, model, 10, deadline=4.0)
    assert np.all(mid["completion"] == np.minimum(exact["completion"], 4.0))


def test_deadline_mse_against_an_independent_projection():
    # approximate decode = each chunk's blocks projected onto the span of its processors'
    # beta columns: MSE = || sum_j (I - P_j) g_j ||^2 / ||g||^2 (SPEC section 3)
    p = build_protocol("psgc", 8, "cyclic", 3, 2, seed=4)
    model = parse_stragglers(SHIFTED, 8, 4)
    sim = Simulator(p, dim=6, seed=4)
    for t in range(10):
        reports = sim.report_times(sim.ends_from_factors(model.factors(t)))
        state = sim.state_at(reports, 3.0)
        G = sim.gradients(t)
        err = np.zeros(6)
        for j in range(8):
            S = p.code.processors(j, state)
            B = p.code.beta[:, S]
            P = B @ np.linalg.pinv(B) if len(S) else np.zeros((2, 2))
            blocks = G[j].reshape(2, 3)
            err += ((np.eye(2) - P) @ blocks).reshape(-1)
        expected = np.sum(err**2) / np.sum(G.sum(axis=0) ** 2)
        assert sim.decode_error(state, t)[0] == pytest.approx(expected, rel=1e-9, abs=1e-24)


def test_must_show_2_deadline_mse_psgc_vs_gc():
    model = parse_stragglers(SHIFTED, 20, 0)
    psgc = build_protocol("psgc", 20, "cyclic", 4, 1)
    gc = build_protocol("gc", 20, "cyclic", 4, 1)
    T = 1.5 * simulate(psgc, model, 1000, check_trials=0)["completion"].mean()
    mse_psgc = simulate(psgc, model, 200, deadline=T)["mse"].mean()
    mse_gc = simulate(gc, model, 200, deadline=T)["mse"].mean()
    assert mse_gc > 0.1 and mse_psgc * 100 <= mse_gc


def test_failures_make_trials_undecodable():
    p = build_protocol("psgc", 6, "cyclic", 2, 1)
    r = simulate(p, parse_stragglers("fail:p=1", 6, 0), 3)
    assert np.all(np.isinf(r["completion"])) and len(r["mse"]) == 0
    assert np.all(r["states"] == 0)  # failed workers never report
