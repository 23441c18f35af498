"""Timetable import (EDT, UDT, STS-web), the seed's version policy, and step 5.

- :mod:`~yearchange_tui.timetable.reader` — recognise and judge an export before writing;
- :mod:`~yearchange_tui.timetable.edt`, :mod:`~yearchange_tui.timetable.udt`,
  :mod:`~yearchange_tui.timetable.sts` — the streaming readers;
- :mod:`~yearchange_tui.timetable.policy` — supported, activated, unsupported, refused versions;
- :mod:`~yearchange_tui.timetable.importer` — match against the directory, rejects, write;
- :mod:`~yearchange_tui.timetable.drop` — automatic mode (watched drop folder);
- :mod:`~yearchange_tui.timetable.school_life` — school-life defaults (step 5) and their check;
- :mod:`~yearchange_tui.timetable.rules` — stable reject codes.

Nothing here imports Textual.
"""
