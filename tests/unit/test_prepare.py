"""`imgclf prepare`: the offline photos, and the sample download run against files served here."""

import io
import zipfile
from pathlib import Path

from PIL import Image

from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.images.samples import SAMPLE_PHOTOS, install_sample_photos
from imgclf.ops.prepare import download_imagenet_samples


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(buffer, format="JPEG")
    return buffer.getvalue()


def test_sample_photos_are_written_once_as_real_jpegs(tmp_path: Path) -> None:
    written = install_sample_photos(tmp_path)
    assert sorted(written) == sorted(SAMPLE_PHOTOS)
    with Image.open(tmp_path / "grace_hopper.jpg") as image:
        assert image.format == "JPEG" and image.mode == "RGB"
    assert install_sample_photos(tmp_path) == []
    assert ImageCatalogue(tmp_path).ids() == sorted(SAMPLE_PHOTOS)


def test_imagenet_samples_are_downloaded_into_the_catalogue(tmp_path: Path, served: tuple[Path, str]) -> None:
    folder, base = served
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("imagenet-sample-images-master/", "")
        zf.writestr("imagenet-sample-images-master/n01440764_tench.JPEG", jpeg_bytes())
        zf.writestr("imagenet-sample-images-master/n01443537_goldfish.JPEG", jpeg_bytes())
        zf.writestr("imagenet-sample-images-master/README.md", "# samples")
        # hostile member names: nothing may land outside the catalogue
        zf.writestr("../../escape.jpg", jpeg_bytes())
        zf.writestr("/tmp/absolute.png", jpeg_bytes())
    (folder / "master.zip").write_bytes(archive.getvalue())
    image_dir = tmp_path / "catalogue"
    settings = Settings(data_dir=tmp_path, image_dir=image_dir, imagenet_samples_url=f"{base}/master.zip")

    added = download_imagenet_samples(settings)

    assert added == ["absolute.png", "escape.jpg", "n01440764_tench.JPEG", "n01443537_goldfish.JPEG"]
    assert sorted(path.name for path in image_dir.iterdir()) == added
    assert not (tmp_path / "escape.jpg").exists()
