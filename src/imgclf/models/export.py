"""Exporting a torch model to ONNX with its manifest (`manifest.py`): done once, by `imgclf prepare`
or by the first worker that has torch and finds no export.

This is the only place the ONNX file and torch's reference answers are made; everything that
serves the file afterwards (`runtimes.py`) needs neither torch nor timm.
"""

from __future__ import annotations

import dataclasses
import fcntl
import io
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from imgclf.images.decoding import open_rgb
from imgclf.images.samples import sample_photo, write_atomically
from imgclf.models.classifier import top_indices
from imgclf.models.loading import TorchClassifier
from imgclf.models.manifest import (
    PROBE_MAX_PIXELS,
    PROBE_PHOTOS,
    ExportManifest,
    export_dir,
    onnx_path,
    probe_path,
    read_manifest,
    write_manifest,
)
from imgclf.models.registry import ModelSpec
from imgclf.models.runtimes import fastest, pipeline_speeds

log = logging.getLogger(__name__)


def export_model(reference: TorchClassifier, spec: ModelSpec, model_dir: Path, threads: int) -> ExportManifest:
    """Export once; later calls (and other workers) find the manifest and reuse the files.
    `threads`: the inference threads a worker of this deployment runs, with which each runtime's
    pipeline is timed for `auto` (`runtimes.pipeline_speeds`)."""
    existing = read_manifest(model_dir, spec.id, spec.weights_file)
    if existing is not None:
        return existing
    folder = export_dir(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    # Workers starting together take turns: the first exports, the others then find the manifest.
    with (folder / f".{spec.id}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existing = read_manifest(model_dir, spec.id, spec.weights_file)
        if existing is not None:
            return existing
        _export_onnx(reference, spec, onnx_path(model_dir, spec.id, spec.weights_file))
        manifest = ExportManifest(
            model_id=spec.id,
            weights_file=spec.weights_file,
            torch_version=torch.__version__.split("+")[0],
            preprocessing=reference.preprocessing,
            labels=reference.labels,
            reference=reference_answers(reference, model_dir),
        )
        speeds = pipeline_speeds(manifest, model_dir, threads)
        manifest = dataclasses.replace(manifest, speeds=speeds, fastest=fastest(speeds))
        log.info("%s: pipeline images/s on the probe photos %s: auto runs %s", spec.id, speeds, manifest.fastest)
        write_manifest(model_dir, manifest)
    return manifest


def reference_answers(reference: TorchClassifier, model_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """torch's top 5 on each probe photo, decoded as the pipeline decodes it and preprocessed by the
    model's own torch transform: what a runtime with the service's preprocessing must reproduce."""
    answers = {}
    for photo in PROBE_PHOTOS:
        path = probe_path(model_dir, photo)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            encoded = io.BytesIO()
            sample_photo(photo).save(encoded, format="JPEG", quality=95)
            write_atomically(path, encoded.getvalue())
        picture = open_rgb(path, PROBE_MAX_PIXELS, reference.decode_size)
        (probabilities,) = reference.predict(reference.reference_preprocess([picture]))
        answers[photo] = [(int(index), float(probabilities[index])) for index in top_indices(probabilities, 5)]
    return answers


def _export_onnx(classifier: TorchClassifier, spec: ModelSpec, target: Path) -> None:
    started = time.perf_counter()
    size = classifier.preprocessing.crop
    example = torch.zeros(2, 3, size, size)
    # The exporter's graph passes log every rewrite at INFO: hundreds of lines per model.
    for noisy in ("onnx_ir", "onnxscript"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Written under a temporary name and renamed, so a worker never reads half a file.
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        partial = Path(scratch) / target.name
        torch.onnx.export(
            classifier.model,
            (example,),
            str(partial),
            dynamo=True,
            opset_version=18,
            external_data=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},),
            verbose=False,
        )
        os.replace(partial, target)
    log.info("%s exported to ONNX in %.1f s", spec.id, time.perf_counter() - started)
