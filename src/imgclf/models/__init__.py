"""Models: `registry` says which exist and where their weights live (no torch import, so the web
process can use it); `loading`, `classifier` and `preprocessing` are the worker side."""
