"""Screens of the console: grid, timeline, rejects, journal, detail, and the dialogs."""
