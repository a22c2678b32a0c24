"""`imgclf prepare`: the offline photos, and the download code run against files served here."""

import functools
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.models.registry import MODELS, model_availability
from imgclf.models.runtimes import onnx_path
from imgclf.ops.prepare import (
    SAMPLE_PHOTOS,
    download_imagenet_samples,
    download_weights,
    export_models,
    install_sample_photos,
)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, standing in for the internet."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


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


def test_downloaded_weights_with_a_wrong_checksum_are_not_kept(tmp_path: Path, served: tuple[Path, str]) -> None:
    folder, base = served
    (folder / MODELS["resnet18"].weights_file).write_bytes(b"not the real resnet18 weights")
    settings = Settings(data_dir=tmp_path, models=["resnet18"], weights_mirror=base)

    with pytest.raises(RuntimeError, match="invalid hash value"):
        download_weights(settings)

    assert model_availability(["resnet18"], settings.models_path).available == []
    checkpoints = settings.models_path / "hub" / "checkpoints"
    assert not any(checkpoints.iterdir())


def test_models_already_present_are_not_downloaded(tmp_path: Path) -> None:
    # efficientnet weights ship in packages and resnet18's file is present: nothing to fetch,
    # so no network access is attempted (the mirror below does not exist).
    settings = Settings(
        data_dir=tmp_path, models=["efficientnet_lite0", "resnet18"], weights_mirror="http://127.0.0.1:9"
    )
    checkpoints = settings.models_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / MODELS["resnet18"].weights_file).write_bytes(b"present")
    assert download_weights(settings) == []


def test_prepare_exports_the_available_models_for_read_only_workers(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, models=["efficientnet_lite0", "resnet18"])
    (exported,) = export_models(settings)  # resnet18 has no weights here: nothing to export
    assert exported == onnx_path(MODELS["efficientnet_lite0"], settings.models_path)
    assert exported.stat().st_size > 1_000_000
    assert export_models(settings) == [exported]  # done once
