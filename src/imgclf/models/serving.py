"""A model made ready to serve, the same way for a worker and for `imgclf classify`."""

from __future__ import annotations

from pathlib import Path

from imgclf.models.classifier import Classifier
from imgclf.models.loading import load_classifier
from imgclf.models.registry import ModelSpec
from imgclf.models.runtimes import RuntimeChoice, RuntimeChoiceReport, accelerate, probe_batch


def load_for_serving(
    spec: ModelSpec, model_dir: Path, runtime: RuntimeChoice, threads: int
) -> tuple[Classifier, RuntimeChoiceReport]:
    """Load `spec`'s weights into torch, then move it to `runtime` (for `auto`, the fastest) if that
    runtime agrees with torch on the probe photos; torch otherwise. `threads`: the runtime's
    inference threads."""
    reference = load_classifier(spec, model_dir)
    return accelerate(reference, spec, model_dir, probe_batch(reference), runtime, threads)
