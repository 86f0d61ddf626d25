from mpiutil import MPI_SCRIPTS, assert_usage_error, run_mpi


def test_validation_failing_on_one_rank_stops_every_rank():
    res = run_mpi(3, [MPI_SCRIPTS / "divergent_data.py"], timeout=90)
    line = assert_usage_error(res)
    assert line == "mpigc: error: data file not found: /nonexistent/mpigc-data.svm", line
