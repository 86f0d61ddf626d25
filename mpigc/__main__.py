"""``python -m mpigc``: the command line."""

from mpigc.cli import main

raise SystemExit(main())
