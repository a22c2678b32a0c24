"""JSON routes: the lesson's contract."""
