"""Errors that the command line turns into one line on stderr and exit status 2."""


class UsageError(ValueError):
    """Bad input: a message that names the bad value. The CLI exits with status 2."""


def require(condition: object, message: str) -> None:
    """Raise :class:`UsageError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UsageError(message)


# Exit statuses of every rank: bad input, and a run stopped by a non-finite gradient or loss.
EXIT_USAGE = 2
EXIT_NONFINITE = 3
# A run that lost processes it cannot do without (ULFM): exact mode with a chunk held by
# fewer than ell live workers, a scheme without redundancy, the parameter server itself.
EXIT_LOST = 4


class ProcessFailure(Exception):
    """A rank of the communicator died, or another rank revoked it (ULFM): every survivor
    calls :meth:`mpigc.runtime.comm.Comm.recover`. Raised by the communication layer only.
    """
