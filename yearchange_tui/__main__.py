"""Allow ``python -m yearchange_tui``."""

from yearchange_tui.cli.main import main

raise SystemExit(main())
