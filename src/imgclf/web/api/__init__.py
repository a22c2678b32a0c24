"""JSON routes: lesson.py (the lesson's contract), operations.py (health, readiness, metrics)."""
