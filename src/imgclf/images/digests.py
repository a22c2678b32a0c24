"""SHA-256 of image files, the content half of the result cache's key."""

from __future__ import annotations

import hashlib
from pathlib import Path

MAX_REMEMBERED = 100_000
"""A bound, not an LRU: catalogues are far smaller; past it the memo starts again."""


class FileDigests:
    """SHA-256 of files, each remembered while its size and modification time stay the same.

    One per process, owned by what uses it (the web app's state, a worker's context): hashing a
    photo costs about as much as decoding it, and the catalogue's files rarely change.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}

    def remembers(self, path: Path) -> bool:
        """True when `of(path)` would answer from memory (one stat, no reading): the caller may
        then skip handing the call to a thread."""
        stat = path.stat()
        return (str(path), stat.st_size, stat.st_mtime_ns) in self._known

    def of(self, path: Path) -> str:
        """The file's SHA-256 as hex."""
        stat = path.stat()
        memo = (str(path), stat.st_size, stat.st_mtime_ns)
        digest = self._known.get(memo)
        if digest is None:
            with path.open("rb") as file:
                digest = hashlib.file_digest(file, "sha256").hexdigest()
            if len(self._known) >= MAX_REMEMBERED:
                self._known.clear()
            self._known[memo] = digest
        return digest
