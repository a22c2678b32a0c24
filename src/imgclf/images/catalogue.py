"""The image catalogue: the only way an image id from a request becomes a file.

An id is the name of a regular file directly inside the catalogue folder. Ids are looked up in a
listing of that folder, never joined onto a path, so `../x`, absolute paths, symlinks and
hidden files cannot name anything outside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from imgclf.errors import UnknownImage

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
"""File types the catalogue lists (compared case-insensitively: ImageNet's files end in .JPEG)."""


class ImageCatalogue:
    """The photos in one folder that users may pick."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._listing: tuple[int, tuple[str, ...]] | None = None

    def ids(self) -> list[str]:
        """Image ids in name order; re-read only when the folder changed."""
        try:
            stamp = self.folder.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if self._listing is None or self._listing[0] != stamp:
            self._listing = (stamp, tuple(sorted(self._scan())))
        return list(self._listing[1])

    def _scan(self) -> list[str]:
        names = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                # follow_symlinks=False: a link could point outside the folder.
                if entry.is_file(follow_symlinks=False):
                    names.append(entry.name)
        return names

    def __contains__(self, image_id: object) -> bool:
        return isinstance(image_id, str) and image_id in self.ids()

    def path(self, image_id: str) -> Path:
        """The file behind an id, or UnknownImage."""
        if image_id not in self:
            raise UnknownImage(image_id)
        return self.folder / image_id

    def media_type(self, image_id: str) -> str:
        suffix = Path(image_id).suffix.lower().lstrip(".")
        return {"jpg": "image/jpeg", "tif": "image/tiff"}.get(suffix, f"image/{suffix}")
