import pytest

from mpiutil import assert_usage_error, run_cli, run_mpi_script


def test_mpi_smoke_collective_and_p2p():
    res = run_mpi_script(4, "smoke", timeout=60)
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout


def test_mpi_failing_rank_aborts_job_instead_of_hanging():
    res = run_mpi_script(4, "fail_one_rank", timeout=60)
    assert res.returncode != 0
    assert "deliberate failure on rank 2" in res.stderr
    assert "OK" not in res.stdout


def test_version():
    from mpigc import __version__

    res = run_cli(["--version"])
    assert res.returncode == 0
    assert res.stdout.strip() == f"mpigc {__version__}"


@pytest.mark.parametrize("argv", [["train", "--scheme", "nope"], ["frobnicate"], []])
def test_bad_command_line_is_one_line_exit_2(argv):
    assert_usage_error(run_cli(argv))
