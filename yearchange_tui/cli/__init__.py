"""The ``yearchange`` command line: one module per family of commands."""

from yearchange_tui.cli.main import main

__all__ = ["main"]
