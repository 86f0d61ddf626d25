from mpigc.cli import main

raise SystemExit(main())
