import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SLURM = Path(__file__).resolve().parent / "slurm"


def pytest_addoption(parser):
    parser.addoption("--slurm", action="store_true",
                     help="run tests/slurm against a private real Slurm (make test-slurm)")


def pytest_ignore_collect(collection_path, config):
    # tests/slurm needs root and Slurm installed: only `make test-slurm` collects it
    if collection_path == SLURM and not config.getoption("--slurm"):
        return True
    return None
