"""``--lr auto`` under MPI: the same step on every rank, from above the exact eigenvalue."""

import json

import pytest

from mpigc.runtime.stepsize import GRAM_MAX_D, LANCZOS_RTOL
from mpiutil import MPI_SCRIPTS, assert_ok, run_mpi


@pytest.mark.parametrize("d", [40, GRAM_MAX_D + 200])   # the Gram matrix, then Lanczos
def test_auto_lr_is_one_step_on_every_rank_within_the_bound(d):
    spec = f"synthetic:n=3000,d={d},density=0.02,seed=4"
    res = assert_ok(run_mpi(4, [MPI_SCRIPTS / "auto_lr_ranks.py", spec], timeout=180,
                            env={"OMP_NUM_THREADS": "1"}))
    out = json.loads(res.stdout.splitlines()[0])
    lrs, exact = out["lr"], out["exact"]
    assert len(set(lrs)) == 1, lrs
    # linear model, no penalty: lr = 1 / bound, exact <= bound <= exact / (1 - rtol)
    bound = 1.0 / lrs[0]
    slack = 1e-9 if d <= GRAM_MAX_D else LANCZOS_RTOL
    assert exact * (1 - 1e-9) <= bound <= exact / (1 - slack), (bound, exact)
