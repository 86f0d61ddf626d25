"""Opening data in a job: the ranks index the file together, once (a byte range each),
every worker reads only the bytes of its own rows (counted by the kernel, /proc/self/io), and a rank that cannot
see a file stops the job with one agreed line."""

import json

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file

from mpiutil import MPI_SCRIPTS, assert_ok, run_mpi

WORKERS = 8
LOAD = 3


def _write(path, rows=24_000):
    rng = np.random.default_rng(0)
    X = sp.random(rows, 2000, density=0.01, random_state=1, format="csr")
    X.data = rng.standard_normal(X.nnz)
    dump_svmlight_file(X, rng.integers(0, 2, rows), str(path), zero_based=False)
    return path.stat().st_size


def test_the_file_is_read_once_per_job(tmp_path):
    size = _write(tmp_path / "d.svm")
    res = assert_ok(run_mpi(WORKERS + 1, [MPI_SCRIPTS / "data_read_once.py", tmp_path / "d.svm"],
                            timeout=180, env={"OMP_NUM_THREADS": "1"}))
    counts = json.loads(res.stdout.splitlines()[0])
    root, workers = counts[0], counts[1:]
    # the ranks index the file together, once: each its byte range (plus the line that
    # crosses its end and the probe for its first line); rank 0 reads no rows
    opened = sum(c["open"] for c in counts)
    assert size <= opened < size + len(counts) * (1 << 17), (size, counts)
    for k, c in enumerate(counts):
        assert c["open"] < size / len(counts) + (1 << 17), (k, c)
    assert root["read"] < 1 << 16, root
    share = LOAD / WORKERS * size
    for k, c in enumerate(workers, start=1):
        # reading costs a worker its rows (the assignment holds LOAD of WORKERS chunks)
        # plus at most two strides of rows per range
        assert c["counted"] <= c["read"] < c["counted"] + (1 << 16), (k, c)
        assert 0.9 * share < c["counted"] < 1.1 * share, (k, c, share)
    total = opened + sum(c["read"] for c in workers)
    assert total < (1 + LOAD) * size * 1.1, (total, size)


def test_each_chunk_is_parsed_once_and_sent_to_its_other_holders(tmp_path):
    size = _write(tmp_path / "d.svm")
    res = assert_ok(run_mpi(WORKERS + 1, [MPI_SCRIPTS / "rows_shared.py", tmp_path / "d.svm",
                                          tmp_path / "out"], timeout=180))
    workers = json.loads(res.stdout.splitlines()[0])
    assert sorted(j for w in workers for j in w["owned"]) == list(range(WORKERS))
    for w in workers:
        assert len(w["chunks"]) == LOAD and len(w["owned"]) == 1, w
        assert w["equal"], w
        # its own chunk's bytes (an eighth of the file), not the LOAD chunks it holds
        assert 0.9 * size / WORKERS < w["parsed"] < 1.1 * size / WORKERS + (1 << 16), (w, size)
