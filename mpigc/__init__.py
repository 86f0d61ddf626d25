"""mpigc: gradient coding over MPI that uses the work of partial stragglers."""

__version__ = "0.1.0"
