"""Timetable readers (EDT, UDT, STS-web) and the version support policy."""
