# Shared set-up for the mpigc batch scripts (sourced, not submitted).
#
# Environment (all optional):
#   MPIGC_HOME      the mpigc checkout (default: the submit directory)
#   MPIGC_VENV      virtualenv to activate (default: $MPIGC_HOME/.venv; "none" to skip)
#   MPIGC_LAUNCHER  srun | mpiexec  (default: srun when inside a Slurm allocation)
#   MPIGC_SRUN_MPI  PMI plugin for srun --mpi (default: pmi2; pmix on newer clusters)
#   MPIGC_STEP_WAIT seconds a step goes on after its first rank ended, then srun ends
#                   it (default: 60; long enough for rank 0 to write its outputs)
#   MPIGC_CACHE     Numba cache directory (default: job-local, in the submit directory:
#                   .mpigc-cache/job-$SLURM_JOB_ID)

set -euo pipefail

MPIGC_HOME=${MPIGC_HOME:-${SLURM_SUBMIT_DIR:-$PWD}}
MPIGC_VENV=${MPIGC_VENV:-$MPIGC_HOME/.venv}
if [[ "$MPIGC_VENV" != none && -f "$MPIGC_VENV/bin/activate" ]]; then
    # shellcheck disable=SC1091
    source "$MPIGC_VENV/bin/activate"
fi
if [[ -n "${SLURM_JOB_ID:-}" ]]; then
    MPIGC_LAUNCHER=${MPIGC_LAUNCHER:-srun}
else
    MPIGC_LAUNCHER=${MPIGC_LAUNCHER:-mpiexec}
fi
MPIGC_SRUN_MPI=${MPIGC_SRUN_MPI:-pmi2}
MPIGC_STEP_WAIT=${MPIGC_STEP_WAIT:-60}

# One compute thread per core that Slurm gave each task; the ranks are the parallelism.
threads=${SLURM_CPUS_PER_TASK:-1}
export NUMBA_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
       MKL_NUM_THREADS=$threads

# A job-local Numba cache, warmed once before any rank starts: ranks then load compiled
# kernels instead of compiling them all at once in the first iteration.
export NUMBA_CACHE_DIR=${MPIGC_CACHE:-${SLURM_SUBMIT_DIR:-$PWD}/.mpigc-cache/job-${SLURM_JOB_ID:-local}}
mkdir -p "$NUMBA_CACHE_DIR"
mpigc warmup

# mpigc_launch N ARGS...: run `mpigc ARGS...` on N ranks with the configured launcher.
# A rank that dies ends the step MPIGC_STEP_WAIT seconds later (srun --wait; mpiexec ends
# it at once): the others would wait for it until the time limit. Not --kill-on-bad-exit:
# a worker that exits 2 on bad input would kill rank 0 before it prints the reason.
mpigc_launch() {
    local n=$1
    shift
    if [[ "$MPIGC_LAUNCHER" == srun ]]; then
        srun --mpi="$MPIGC_SRUN_MPI" --ntasks="$n" --cpus-per-task="$threads" \
             --exclusive --wait="$MPIGC_STEP_WAIT" mpigc "$@"
    else
        mpiexec -n "$n" mpigc "$@"
    fi
}

echo "mpigc job ${SLURM_JOB_ID:-local}: launcher=$MPIGC_LAUNCHER threads/rank=$threads" \
     "cache=$NUMBA_CACHE_DIR"
