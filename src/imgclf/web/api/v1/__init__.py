"""The versioned JSON API under /api/v1: classifications (submit, status, events, delete) and
what may be picked (models, the image catalogue)."""
