import os
from pathlib import Path

import pytest

from imgclf.errors import UnknownImage
from imgclf.images.catalogue import ImageCatalogue


@pytest.fixture
def catalogue(tmp_path: Path) -> ImageCatalogue:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("cat.jpg", "n01440764_tench.JPEG", "logo.png"):
        (folder / name).write_bytes(b"x")
    (folder / ".hidden.jpg").write_bytes(b"x")
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub.jpg").mkdir()
    (tmp_path / "secret.jpg").write_bytes(b"outside")
    os.symlink(tmp_path / "secret.jpg", folder / "link.jpg")
    return ImageCatalogue(folder)


def test_lists_only_regular_image_files_in_name_order(catalogue: ImageCatalogue) -> None:
    assert catalogue.ids() == ["cat.jpg", "logo.png", "n01440764_tench.JPEG"]


@pytest.mark.parametrize(
    "image_id",
    ["../secret.jpg", "link.jpg", ".hidden.jpg", "notes.txt", "sub.jpg", "missing.jpg", "", "/etc/passwd"],
)
def test_ids_outside_the_listing_name_no_file(catalogue: ImageCatalogue, image_id: str) -> None:
    with pytest.raises(UnknownImage):
        catalogue.path(image_id)


def test_absolute_path_of_a_catalogue_file_is_not_an_id(catalogue: ImageCatalogue) -> None:
    with pytest.raises(UnknownImage):
        catalogue.path(str(catalogue.folder / "cat.jpg"))


def test_a_listed_id_maps_to_its_file(catalogue: ImageCatalogue) -> None:
    assert catalogue.path("cat.jpg") == catalogue.folder / "cat.jpg"
    assert catalogue.media_type("cat.jpg") == "image/jpeg"
    assert catalogue.media_type("n01440764_tench.JPEG") == "image/jpeg"
    assert catalogue.media_type("logo.png") == "image/png"


def test_photos_added_later_are_listed(catalogue: ImageCatalogue) -> None:
    assert "dog.jpg" not in catalogue
    (catalogue.folder / "dog.jpg").write_bytes(b"x")
    assert "dog.jpg" in catalogue.ids()


def test_a_missing_folder_is_an_empty_catalogue(tmp_path: Path) -> None:
    assert ImageCatalogue(tmp_path / "nowhere").ids() == []
