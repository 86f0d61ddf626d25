"""The MPI runtime of ``mpigc train`` (docs/ARCHITECTURE.md)."""
