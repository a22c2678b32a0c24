"""HTML pages: templates/ and static/ (every asset vendored, no CDN)."""
