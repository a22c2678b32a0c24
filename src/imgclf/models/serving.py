"""A model made ready to serve, the same way for a worker, `imgclf classify` and the benchmark.

The usual path imports no torch: the export's manifest (`manifest.py`) gives the preprocessing and
labels, the runtime reads the ONNX file and must reproduce torch's answers on the probe photos.
torch is imported only to export a model that has no export yet, for `IMGCLF_RUNTIME=torch`, or
as the fallback when the runtime cannot be used; without torch installed (`pip install imgclf`
with no `[torch]` extra) such a model is refused with the reason (`ModelNotServable`).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

from imgclf.models.classifier import Classifier
from imgclf.models.manifest import ExportManifest, read_manifest
from imgclf.models.registry import ModelSpec
from imgclf.models.runtimes import AUTO, RUNTIMES, Runtime, RuntimeChoice, build, installed, parity_problem

log = logging.getLogger(__name__)


class ModelNotServable(Exception):
    """The model can be served by no runtime in this installation; the message says why."""


@dataclass(frozen=True)
class RuntimeChoiceReport:
    """What was decided for one model, for the worker's log and the benchmark."""

    chosen: Runtime
    rejected: dict[str, str] = field(default_factory=dict)
    """Runtime -> why it was not used."""


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def load_for_serving(
    spec: ModelSpec, model_dir: Path, runtime: RuntimeChoice, threads: int
) -> tuple[Classifier, RuntimeChoiceReport]:
    """`spec` on `runtime` (`auto`: `runtimes.AUTO`) with `threads` inference threads, if that runtime
    reproduces torch's answers; on torch otherwise. Raises ModelNotServable when neither can run."""
    if runtime == "torch":
        return load_torch(spec, model_dir, threads), RuntimeChoiceReport("torch")
    wanted: Runtime = AUTO if runtime == "auto" else runtime
    try:
        manifest = read_manifest(model_dir, spec.id, spec.weights_file) or _export(spec, model_dir, threads)
        if runtime == "auto":
            wanted = auto_runtime(manifest)
        candidate = build(wanted, manifest, model_dir, threads)
        problem = parity_problem(candidate, manifest, model_dir)
    except ModelNotServable:
        raise
    except Exception as exc:  # a runtime that cannot load the file must not stop the worker
        problem = f"{type(exc).__name__}: {exc}"
    if problem is None:
        return candidate, RuntimeChoiceReport(wanted)
    if not torch_installed():
        raise ModelNotServable(f"{wanted} cannot serve it ({problem}) and torch is not installed")
    log.warning("%s: not using %s: %s; falling back to torch", spec.id, wanted, problem)
    return load_torch(spec, model_dir, threads), RuntimeChoiceReport("torch", {wanted: problem})


def auto_runtime(manifest: ExportManifest) -> Runtime:
    """What `auto` runs for this export: the runtime timed fastest at export if it is installed
    here (a light install has no OpenVINO), else `runtimes.AUTO`. The same for every worker."""
    recorded = manifest.fastest
    if recorded in RUNTIMES and recorded != "torch" and installed(recorded):
        return recorded
    return AUTO


def load_torch(spec: ModelSpec, model_dir: Path, threads: int) -> Classifier:
    """The model in eager torch, `threads` threads (torch's setting is per process)."""
    if not torch_installed():
        raise ModelNotServable("IMGCLF_RUNTIME=torch, and torch is not installed (pip install 'imgclf[torch]')")
    import torch

    from imgclf.models.loading import load_classifier

    torch.set_num_threads(threads)
    return load_classifier(spec, model_dir)


def _export(spec: ModelSpec, model_dir: Path, threads: int) -> ExportManifest:
    if not torch_installed():
        raise ModelNotServable(
            "it has no ONNX export in the model cache, and torch, which makes one, is not installed "
            "(run `imgclf prepare` where imgclf[torch] is installed)"
        )
    from imgclf.models.export import export_model
    from imgclf.models.loading import load_classifier

    return export_model(load_classifier(spec, model_dir), spec, model_dir, threads)
