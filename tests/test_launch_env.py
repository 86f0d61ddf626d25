from mpigc.runtime import launch


def test_oversubscribed_node_gets_yield_settings():
    env = {"MPI_LOCALNRANKS": "9"}
    applied = launch.configure(env, cores=2)
    assert env["MPIR_CVAR_ENABLE_HEAVY_YIELD"] == "1"
    assert env["MPIR_CVAR_CH4_PROGRESS_THROTTLE"] == "1"
    assert env["NUMBA_NUM_THREADS"] == "1"
    assert "MPIR_CVAR_POLLS_BEFORE_YIELD" in applied


def test_user_settings_are_never_overridden():
    env = {"OMPI_COMM_WORLD_LOCAL_SIZE": "16", "MPIR_CVAR_ENABLE_HEAVY_YIELD": "0",
           "NUMBA_NUM_THREADS": "4"}
    launch.configure(env, cores=2)
    assert env["MPIR_CVAR_ENABLE_HEAVY_YIELD"] == "0"
    assert env["NUMBA_NUM_THREADS"] == "4"


def test_no_yield_settings_when_ranks_fit_the_cores():
    env = {"SLURM_STEP_TASKS_PER_NODE": "4(x2)"}
    launch.configure(env, cores=16)
    assert "MPIR_CVAR_ENABLE_HEAVY_YIELD" not in env
    assert launch.local_ranks({"SLURM_STEP_TASKS_PER_NODE": "4(x2)"}) == 4


def test_launcher_rank_and_size():
    assert launch.launcher_rank({"PMI_RANK": "3"}) == 3
    assert launch.launcher_rank({}) == 0
    assert launch.launcher_size({"OMPI_COMM_WORLD_SIZE": "5"}) == 5


def test_world_size_mismatch_is_refused():
    import pytest

    from mpigc.errors import UsageError

    with pytest.raises(UsageError, match="world of 1 rank.*srun started 9 tasks"):
        launch.check_world_size(1, {"SLURM_STEP_NUM_TASKS": "9", "SLURM_PROCID": "0"})
    launch.check_world_size(9, {"SLURM_STEP_NUM_TASKS": "9", "SLURM_PROCID": "3"})
    # mpiexec inside an allocation: the allocation size does not matter
    launch.check_world_size(9, {"PMI_SIZE": "9", "SLURM_NTASKS": "32"})
    launch.check_world_size(4, {})


def test_oversubscribed_node_gets_a_flat_broadcast_tree_unless_the_user_chose():
    env = {"MPI_LOCALNRANKS": "9"}
    launch.configure(env, cores=2)
    assert env["MPIR_CVAR_IBCAST_INTRA_ALGORITHM"] == "tsp_tree"
    assert env["MPIR_CVAR_IBCAST_TREE_TYPE"] == "kary"
    assert int(env["MPIR_CVAR_IBCAST_TREE_KVAL"]) >= 2**20
    # and the reduction of --decode reduce
    assert env["MPIR_CVAR_IREDUCE_INTRA_ALGORITHM"] == "tsp_tree"
    assert env["MPIR_CVAR_IREDUCE_TREE_TYPE"] == "kary"
    assert int(env["MPIR_CVAR_IREDUCE_TREE_KVAL"]) >= 2**20
    env = {"MPI_LOCALNRANKS": "9", "MPIR_CVAR_IBCAST_INTRA_ALGORITHM": "sched_binomial",
           "MPIR_CVAR_IREDUCE_TREE_KVAL": "2"}
    launch.configure(env, cores=2)
    assert env["MPIR_CVAR_IBCAST_INTRA_ALGORITHM"] == "sched_binomial"
    assert env["MPIR_CVAR_IREDUCE_TREE_KVAL"] == "2"
    env = {"MPI_LOCALNRANKS": "2"}
    launch.configure(env, cores=2)
    assert "MPIR_CVAR_IBCAST_INTRA_ALGORITHM" not in env
    assert "MPIR_CVAR_IREDUCE_INTRA_ALGORITHM" not in env


def test_the_cli_imports_numpy_only_after_configuring_the_threads():
    import subprocess
    import sys

    code = ("import sys, mpigc.cli\n"
            "assert 'numpy' not in sys.modules, 'numpy imported before launch.configure()'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
