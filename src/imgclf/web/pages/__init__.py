"""HTML pages: routes.py, templates/ and static/ (every asset vendored, no CDN)."""
