from mpiutil import MPI_SCRIPTS, assert_usage_error, run_mpi


def test_validation_failing_on_one_rank_stops_every_rank():
    res = run_mpi(3, [MPI_SCRIPTS / "divergent_data.py"], timeout=90)
    line = assert_usage_error(res)
    assert line == "mpigc: error: data file not found: /nonexistent/mpigc-data.svm", line



def _parts(tmp_path):
    for k in range(3):
        (tmp_path / f"part{k}.svm").write_text("".join(f"{i % 2} 1:{i}\n" for i in range(40)))
    return f"{tmp_path}/part*.svm"


def test_a_glob_that_differs_between_ranks_stops_every_rank(tmp_path):
    res = run_mpi(3, [MPI_SCRIPTS / "divergent_glob.py", _parts(tmp_path), "fewer"], timeout=90)
    line = assert_usage_error(res)
    assert line == (f"mpigc: error: the data spec names different files on different ranks: "
                    f"rank 0 sees 3, rank 1 sees 2, differing in {tmp_path}/part2.svm (a "
                    f"directory that is not shared, or still being written?)"), line


def test_a_rank_failing_while_the_data_opens_aborts_the_job(tmp_path):
    res = run_mpi(3, [MPI_SCRIPTS / "divergent_glob.py", _parts(tmp_path), "crash"], timeout=90)
    assert res.returncode not in (0, 2), res.returncode
    assert "deliberate failure in rank 1's glob" in res.stderr
