"""Placeholder main job until the MPI runtime lands: a small coding demo."""

print("mpigc: the main job is being built; run `make test`.")
