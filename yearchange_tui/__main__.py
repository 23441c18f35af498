"""Allow ``python -m yearchange_tui``."""

from yearchange_tui.cli import main

raise SystemExit(main())
