"""Widgets of the console: the calendar grid, the header, the progress pane, the timeline."""
