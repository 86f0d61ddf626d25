"""``python -m mpigc``: the command line."""

from mpigc.cli import console

raise SystemExit(console())
