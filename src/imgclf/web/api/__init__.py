"""JSON routes: lesson.py (the lesson's contract), operations.py (health, readiness, metrics),
v1/ (the versioned API: classifications, models, images)."""
