"""yearchange_tui: the operator console and engine of the ENT school-year change-over."""

__version__ = "0.1.0"
