"""The change-over workflow vocabulary: steps, units, guards, audit, events, calendar (no Textual)."""
