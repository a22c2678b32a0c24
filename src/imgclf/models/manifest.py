"""An exported model as a worker without torch finds it: the ONNX file and its manifest.

`imgclf prepare` (or the first worker that has torch, `export.py`) writes, per model, into
`<model dir>/onnx/`: `<id>-<weights>.onnx`, then `<id>-<weights>.json`, this manifest. It says what
the file was made from (weights file, torch version), everything a worker needs to serve it with
no torch (`Preprocessing`, the 1000 labels) and torch's own top 5 on probe photos stored beside
it (`probes/`), which a worker's runtime must reproduce before it serves the model
(`runtimes.parity_problem`), and how fast each installed runtime ran the whole pipeline there
(`fastest`: the runtime `auto` means for this model, decided once for every worker). The
manifest is written last, so its presence means the export is complete; its name carries the
weights file, so new weights mean a new export.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf.models.preprocessing import Preprocessing

FORMAT = 1
"""The manifest's own version: a manifest of another format is ignored (exported again)."""

PROBE_PHOTOS = ("chelsea.jpg", "coffee.jpg")
"""The sample photos a runtime is checked on (a cat, a coffee); copies live in `probes/`."""

PROBE_MAX_PIXELS = 40_000_000
"""Decoding limit for the probe photos (a few hundred pixels a side; the service's own default)."""


@dataclass(frozen=True)
class ExportManifest:
    """What `export.py` wrote for one model."""

    model_id: str
    weights_file: str
    torch_version: str
    preprocessing: Preprocessing
    labels: list[str]
    reference: dict[str, list[tuple[int, float]]]
    """Probe photo -> torch's top 5 on it as (class index, probability 0..1), computed with the
    model's own torch transform (the reference preprocessing)."""
    speeds: dict[str, float] = field(default_factory=dict)
    """Runtime -> images/s of the whole pipeline on the probe photos, timed at export with the
    deployment's inference threads per worker (`runtimes.pipeline_speeds`)."""
    fastest: str | None = None
    """The fastest of `speeds`: what `IMGCLF_RUNTIME=auto` runs, the same for every worker."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model_id": self.model_id,
            "weights_file": self.weights_file,
            "torch_version": self.torch_version,
            "preprocessing": self.preprocessing.as_dict(),
            "labels": self.labels,
            "reference": {photo: [list(pair) for pair in top] for photo, top in self.reference.items()},
            "speeds": self.speeds,
            "fastest": self.fastest,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportManifest:
        return cls(
            model_id=data["model_id"],
            weights_file=data["weights_file"],
            torch_version=data["torch_version"],
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            labels=[str(label) for label in data["labels"]],
            reference={
                photo: [(int(index), float(probability)) for index, probability in top]
                for photo, top in data["reference"].items()
            },
            speeds={str(runtime): float(rate) for runtime, rate in (data.get("speeds") or {}).items()},
            fastest=data.get("fastest"),
        )


def export_dir(model_dir: Path) -> Path:
    return model_dir / "onnx"


def probe_path(model_dir: Path, photo: str) -> Path:
    return export_dir(model_dir) / "probes" / photo


def _stem(model_id: str, weights_file: str) -> str:
    return f"{model_id}-{Path(weights_file).stem}"


def onnx_path(model_dir: Path, model_id: str, weights_file: str) -> Path:
    """Where the exported model lives: new weights mean a new file."""
    return export_dir(model_dir) / f"{_stem(model_id, weights_file)}.onnx"


def manifest_path(model_dir: Path, model_id: str, weights_file: str) -> Path:
    return export_dir(model_dir) / f"{_stem(model_id, weights_file)}.json"


def is_exported(model_dir: Path, model_id: str, weights_file: str) -> bool:
    """True when the model's export is complete (its manifest is written last); no file is read."""
    return manifest_path(model_dir, model_id, weights_file).is_file()


def read_manifest(model_dir: Path, model_id: str, weights_file: str) -> ExportManifest | None:
    """The model's manifest, or None when there is no complete export of these weights in this format."""
    path = manifest_path(model_dir, model_id, weights_file)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    if data.get("format") != FORMAT or not onnx_path(model_dir, model_id, weights_file).is_file():
        return None
    return ExportManifest.from_dict(data)


def write_manifest(model_dir: Path, manifest: ExportManifest) -> Path:
    """Write under a temporary name, then rename: a reader never sees half a manifest."""
    target = manifest_path(model_dir, manifest.model_id, manifest.weights_file)
    with tempfile.NamedTemporaryFile("w", dir=target.parent, prefix=".partial-", delete=False) as file:
        json.dump(manifest.as_dict(), file)
    os.replace(file.name, target)
    return target
