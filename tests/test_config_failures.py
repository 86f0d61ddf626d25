"""allreduce cannot lose a worker: config refuses every straggler spec that can fail one."""

import pytest

from mpigc import config
from mpigc.errors import UsageError

MESSAGE = "cannot run with failing workers"


def _allreduce(stragglers):
    return config.from_args(config.arguments(scheme="allreduce", stragglers=stragglers))


def test_fail_model_is_refused_with_the_same_message():
    spec = "bimodal:p=0.1,slowdown=2+fail:p=0.1"
    with pytest.raises(UsageError, match=r"--stragglers .*: allreduce cannot run with failing "
                                         r"workers \(an MPI_Allreduce waits for every rank\)"):
        _allreduce(spec).straggler_model(4)


def test_trace_with_inf_is_refused(tmp_path):
    trace = tmp_path / "trace.txt"
    trace.write_text("1 2 1 1\n1 inf 1 1\n")
    with pytest.raises(UsageError, match=MESSAGE):
        _allreduce(f"trace:{trace}").straggler_model(4)
    with pytest.raises(UsageError, match=MESSAGE):
        _allreduce(f"exp:mean=1+trace:{trace}").straggler_model(4)


def test_finite_trace_is_accepted(tmp_path):
    trace = tmp_path / "trace.txt"
    trace.write_text("1, 2, 1, 1\n3 1 1 1\n")
    model = _allreduce(f"trace:{trace}").straggler_model(4)
    assert not model.can_fail and model.factors(1).tolist() == [3.0, 1.0, 1.0, 1.0]


def test_failing_traces_are_fine_with_a_parameter_server(tmp_path):
    trace = tmp_path / "trace.txt"
    trace.write_text("1 inf 1 1\n")
    cfg = config.from_args(config.arguments(stragglers=f"trace:{trace}"))
    assert cfg.straggler_model(4).can_fail
