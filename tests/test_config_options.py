"""``mpigc train`` options: validation and the objects built from them (no MPI)."""

import pytest


@pytest.mark.parametrize("over, match", [
    (dict(iterations=0), "--iterations"),
    (dict(lr="fast"), "--lr"),
    (dict(lr="-1"), "--lr"),
    (dict(chunk_time=float("nan")), "--chunk-time"),
    (dict(l2=-1.0), "--l2"),
    (dict(row_block=0), "--row-block"),
    (dict(iteration_timeout=0.0), "--iteration-timeout"),
    (dict(checkpoint_every=-1), "--checkpoint-every"),
    (dict(faults="bogus"), "--faults"),
])
def test_config_rejects_bad_options(over, match):
    from mpigc import config
    from mpigc.errors import UsageError

    with pytest.raises(UsageError, match=match):
        config.from_args(config.arguments(**over))


def test_config_builds_protocol_and_refuses_failures_with_allreduce():
    from mpigc import config
    from mpigc.errors import UsageError

    cfg = config.from_args(config.arguments(lr="0.5"))
    assert cfg.lr == 0.5 and config.from_args(config.arguments()).lr is None
    p = cfg.protocol(4)
    assert p.scheme.name == "psgc" and p.assignment.n_workers == 4
    ar = config.from_args(config.arguments(scheme="allreduce",
                                stragglers="bimodal:p=0.1,slowdown=2+fail:p=0.1"))
    with pytest.raises(UsageError, match="allreduce"):
        ar.straggler_model(4)


def test_tol_means_the_gradient_rule_and_no_option_is_abbreviated():
    from mpigc import config
    from mpigc.cli import build_parser
    from mpigc.errors import UsageError

    cfg = config.from_args(build_parser().parse_args(["train", "--tol", "1e-9",
                                                      "--tolerance", "1"]))
    assert cfg.tol == 1e-9 and cfg.straggler_tolerance == 1
    assert cfg.optimizer == "gd" and cfg.precondition == "std" and cfg.history == 10
    with pytest.raises(UsageError, match="unrecognized arguments: --opt lbfgs"):
        build_parser().parse_args(["train", "--opt", "lbfgs"])
    lbfgs = config.from_args(config.arguments(optimizer="lbfgs", scheme="gc-cover"))
    assert lbfgs.protocol(4).scheme.exact
