"""The simulator: the protocol without MPI, replay of recorded runs, figures."""
