"""The change-over engine: steps 0 to 5, dry run, archives, notices, verification (no Textual)."""
