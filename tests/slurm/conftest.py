"""The private Slurm of ``make test-slurm`` (see cluster.py): one per test session."""

import os
import shutil
import tempfile

import pytest

from cluster import Cluster, missing

JOBS = []  # sacct's table of every job of the session, shown at the end


def pytest_terminal_summary(terminalreporter):
    for table in JOBS:
        terminalreporter.write_sep("-", "jobs submitted to the private Slurm")
        terminalreporter.write(table)


@pytest.fixture(scope="session")
def slurm():
    """A running private Slurm; a machine that cannot run one fails the tests (no skip)."""
    reason = missing()
    if reason is not None:
        pytest.fail(f"make test-slurm cannot run here: {reason}", pytrace=False)
    # not under pytest's tmp_path: munged wants every directory above its socket searchable
    root = tempfile.mkdtemp(prefix="mpigc-slurm-")
    os.chmod(root, 0o755)
    cluster = Cluster(root)
    try:
        cluster.start()
        yield cluster
        JOBS.append(cluster.run(["sacct", "--completion", "-o",
                                 "JobID,JobName%14,State,ExitCode,Elapsed"]).stdout)
    finally:
        left = cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert not left, f"processes left running after Slurm was stopped: {left}"
