"""Everything Textual: the operator console."""
