"""`imgclf prepare`: fill the image catalogue and the model cache before the service starts.

Offline (always): real photos that scikit-image and matplotlib ship in their wheels
(`imgclf.images.samples`).
`--download` (needs the internet): torchvision's weights for the lesson's models and the
ImageNet sample-image set the lesson uses. Nothing here ever runs while serving a request.
"""

from __future__ import annotations

import io
import logging
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from imgclf.config import Settings
from imgclf.images.catalogue import IMAGE_SUFFIXES
from imgclf.images.samples import install_sample_photos, write_atomically
from imgclf.models.manifest import is_exported
from imgclf.models.registry import MODELS, torch_hub_checkpoints
from imgclf.models.serving import torch_installed
from imgclf.ops.progress import progress

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 50 << 20
"""Archive members larger than this are skipped, not extracted (zip bombs)."""

MAX_DOWNLOAD_BYTES = 1 << 30
"""A download larger than this is refused (the ImageNet samples zip is about 100 MB)."""

CHUNK_BYTES = 1 << 20
"""The sample archive is read this much at a time, so that its bar moves."""


def download_weights(settings: Settings, model_ids: list[str] | None = None) -> list[str]:
    """Fetch torchvision weights into the model cache (hash-checked); return the ids fetched."""
    import torch.hub
    import torchvision.models

    checkpoints = torch_hub_checkpoints(settings.model_dir)
    specs = [MODELS[model_id] for model_id in model_ids or settings.models]
    missing = [
        (spec, weights)
        for spec in specs
        if (weights := spec.torchvision_weights) is not None and not spec.weights_path(settings.model_dir).is_file()
    ]
    fetched = []
    with progress(len(missing), "torchvision weights") as bar:
        for spec, weights in missing:
            url = torchvision.models.get_weight(weights).url
            if settings.weights_mirror:
                url = f"{settings.weights_mirror.rstrip('/')}/{spec.weights_file}"
            log.info("downloading %s weights from %s", spec.id, url)
            checkpoints.mkdir(parents=True, exist_ok=True)
            # torch.hub's own download: it checks the file's SHA-256 against the prefix in its name
            # and keeps nothing that does not match. Its own bar is off: ours counts the files, and
            # its bar would be written into logs too.
            match = torch.hub.HASH_REGEX.search(spec.weights_file)
            torch.hub.download_url_to_file(
                url, str(checkpoints / spec.weights_file), hash_prefix=match.group(1) if match else None, progress=False
            )
            fetched.append(spec.id)
            bar.advance()
    return fetched


def download_imagenet_samples(settings: Settings) -> list[str]:
    """Fetch the lesson's ImageNet sample zip and add its images to the catalogue."""
    log.info("downloading ImageNet sample images from %s", settings.imagenet_samples_url)
    chunks: list[bytes] = []
    size = 0
    with (
        urllib.request.urlopen(settings.imagenet_samples_url, timeout=60) as response,
        progress(response.length, "ImageNet sample images", in_bytes=True) as bar,
    ):
        # In chunks, for the bar; still at most one byte past the limit, as one read would be.
        while size <= MAX_DOWNLOAD_BYTES:
            chunk = response.read(min(CHUNK_BYTES, MAX_DOWNLOAD_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            bar.advance(len(chunk))
    payload = b"".join(chunks)
    if len(payload) > MAX_DOWNLOAD_BYTES:
        raise ValueError("the sample-image archive is larger than 1 GiB; refusing it")
    return extract_images(payload, settings.image_dir)


def extract_images(zip_bytes: bytes, image_dir: Path) -> list[str]:
    """Copy the image files of a zip, flattened to their base names, into the catalogue.

    Members are never extracted by their own path: only the base name is kept, and only image
    suffixes, so an archive cannot write outside the catalogue folder.
    """
    image_dir.mkdir(parents=True, exist_ok=True)
    added = []
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        for member in archive.infolist():
            name = PurePosixPath(member.filename.replace("\\", "/")).name
            if member.is_dir() or not name or name.startswith("."):
                continue
            if PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            target = image_dir / name
            if target.exists() or member.file_size > MAX_IMAGE_BYTES:
                continue
            write_atomically(target, archive.read(member))
            added.append(name)
    return sorted(added)


def export_models(settings: Settings) -> list[str]:
    """ONNX exports with their manifests (`imgclf.models.manifest`) of every model whose weights
    are here and that has none yet, so that workers need no torch (containers also mount the cache
    read-only); return the ids exported. Needs torch (`imgclf[torch]`): without it, a model is
    served only if its export was made elsewhere and copied into the model cache."""
    missing = [
        spec
        for spec in (MODELS[model_id] for model_id in settings.models)
        if spec.weights_path(settings.model_dir).is_file()
        and not is_exported(settings.model_dir, spec.id, spec.weights_file)
    ]
    if missing and not torch_installed():
        log.warning("torch is not installed: cannot export %s", ", ".join(spec.id for spec in missing))
        return []
    from imgclf.models.export import export_model
    from imgclf.models.loading import load_classifier

    with progress(len(missing), "ONNX exports") as bar:
        for spec in missing:
            export_model(
                load_classifier(spec, settings.model_dir), spec, settings.model_dir, settings.threads_per_worker()
            )
            bar.advance()
    return [spec.id for spec in missing]


def prepare(settings: Settings, *, download: bool) -> None:
    """The whole `imgclf prepare` command."""
    written = install_sample_photos(settings.image_dir)
    log.info("catalogue %s: %d sample photos added", settings.image_dir, len(written))
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    if download:
        fetched = download_weights(settings)
        log.info("model cache %s: weights fetched for %s", settings.model_dir, fetched or "none")
        added = download_imagenet_samples(settings)
        log.info("catalogue %s: %d ImageNet sample images added", settings.image_dir, len(added))
    if settings.runtime != "torch":
        exported = export_models(settings)
        log.info("model cache %s: exported %s", settings.model_dir, exported or "nothing new")
