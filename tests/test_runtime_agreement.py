from mpiutil import MPI_SCRIPTS, run_mpi


def test_validation_failing_on_one_rank_stops_every_rank():
    res = run_mpi(3, [MPI_SCRIPTS / "divergent_data.py"], timeout=90)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines == ["mpigc: error: data file not found: /nonexistent/mpigc-data.svm"], res.stderr
