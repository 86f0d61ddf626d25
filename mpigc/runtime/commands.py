"""Commands of the per-iteration broadcast ``[iteration, command, w]`` (no MPI here)."""

import enum


class Command(enum.IntEnum):
    """What rank 0 tells every rank at an iteration boundary.

    Workers evaluate at ``w`` on CONTINUE and CHECKPOINT (rank 0 wrote a checkpoint before
    this iteration; everyone carries on) and leave the loop on any other command: STOP (the
    final evaluation follows), CHECKPOINT_STOP (a checkpoint was written after a signal;
    every rank exits 0 without the final evaluation) and NONFINITE_STOP (a non-finite
    gradient or loss; the final evaluation follows, then exit status
    :data:`~mpigc.errors.EXIT_NONFINITE`) and LOST_STOP (processes the run cannot do
    without died, ULFM: rank 0 wrote a checkpoint; every rank exits with
    :data:`~mpigc.errors.EXIT_LOST` without the final evaluation). On HOLDOUT every worker
    computes the held-out metrics of its share at ``w`` (:mod:`~mpigc.runtime.holdout`) and
    waits for the next broadcast.
    """

    CONTINUE = 0
    STOP = 1
    CHECKPOINT_STOP = 2
    NONFINITE_STOP = 3
    CHECKPOINT = 4
    LOST_STOP = 5
    HOLDOUT = 6

    @property
    def evaluates(self):
        """Whether the workers evaluate the gradient at the broadcast point."""
        return self in (Command.CONTINUE, Command.CHECKPOINT)
