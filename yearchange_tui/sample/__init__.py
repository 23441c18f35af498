"""The sample académie generator: roster, database filler, AAF and timetable writers."""
