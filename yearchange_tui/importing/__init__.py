"""What the AAF importer and the timetable importer share.

- :mod:`~yearchange_tui.importing.rules` — severities, the rule record and the rule book
  behind each importer's table of stable reject codes;
- :mod:`~yearchange_tui.importing.xmlsafe` — the file refusal error and the byte and
  parser checks of hostile or broken XML;
- :mod:`~yearchange_tui.cli.importing` — how an import command reports a refusal.

Each importer keeps its own codes and French texts. Nothing here imports Textual.
"""
