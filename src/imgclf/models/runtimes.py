"""Faster inference runtimes for the same models: ONNX Runtime and OpenVINO.

Each torch model is exported once to ONNX (a dynamic batch dimension) into the model cache,
keyed by model id, weights file and torch version; both runtimes read that file. When a worker
starts, every candidate runtime must agree with torch on probe photos (same top 5, every
probability within `PARITY_TOLERANCE`) or it is not used; the reason is logged and the worker
keeps torch. `auto` then takes the fastest runtime that passed, timed on the spot.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from imgclf.images.samples import sample_photo
from imgclf.models.classifier import Classifier, TorchClassifier
from imgclf.models.registry import ModelSpec

log = logging.getLogger(__name__)

Runtime = Literal["torch", "onnxruntime", "openvino"]
RUNTIMES: tuple[Runtime, ...] = ("torch", "onnxruntime", "openvino")
RuntimeChoice = Literal["auto", "torch", "onnxruntime", "openvino"]

PARITY_TOLERANCE = 1e-3
"""Largest difference allowed between a runtime's probabilities and torch's, on a 0..1 scale."""

SPEED_PROBE_SECONDS = 0.3
"""How long `auto` times each runtime that passed parity (batch of one, after a warm-up)."""

PREFERENCE: tuple[Runtime, ...] = ("onnxruntime", "openvino", "torch")
"""`auto`'s order when runtimes time alike: ONNX Runtime ran the whole pipeline (decode to top 5)
fastest in docs/benchmarks.md, while its forward pass alone times like OpenVINO's."""

CLEARLY_FASTER = 1.1
"""`auto` leaves the preferred runtime only for one at least this many times faster: a 0.3 s
probe on a shared machine cannot tell closer runtimes apart."""

PROBE_PHOTOS = ("chelsea.jpg", "coffee.jpg")
"""The sample photos parity is checked on: installed packages ship them, so no catalogue is needed."""


def onnx_path(spec: ModelSpec, model_dir: Path) -> Path:
    """Where the exported model lives: a new weights file or torch version means a new export."""
    weights = Path(spec.weights_file).stem
    torch_version = torch.__version__.split("+")[0]
    return model_dir / "onnx" / f"{spec.id}-{weights}-torch{torch_version}.onnx"


def export_onnx(classifier: TorchClassifier, spec: ModelSpec, model_dir: Path, input_size: int) -> Path:
    """Export once; later calls (and other workers) reuse the file."""
    target = onnx_path(spec, model_dir)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Workers starting together take turns: the first exports, the others then find the file.
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        _export(classifier, spec, target, input_size)
    return target


def _export(classifier: TorchClassifier, spec: ModelSpec, target: Path, input_size: int) -> None:
    started = time.perf_counter()
    example = torch.zeros(2, 3, input_size, input_size)
    # The exporter's graph passes log every rewrite at INFO: hundreds of lines per model.
    for noisy in ("onnx_ir", "onnxscript"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Written under a temporary name and renamed, so a worker never reads half a file even when
    # several export at once.
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


def _softmax(logits: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32)).softmax(dim=1)


class OnnxRuntimeClassifier(Classifier):
    """ONNX Runtime on the CPU."""

    runtime = "onnxruntime"

    def __init__(self, base: Classifier, model_file: Path, threads: int) -> None:
        import onnxruntime

        super().__init__(base.model_id, base.transform, base.labels, base.decode_size)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning: the web process and other workers share the CPUs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The CPU provider computes a float32 model in float32 and has no precision hint. Its one
        # reduced-precision switch, bfloat16 matrix products in ARM64 builds, is off by default; it
        # is pinned off so that a changed default cannot bring back the parity failures that
        # OpenVINO's default bfloat16 caused (see `openvino_config`).
        options.add_session_config_entry("mlas.enable_gemm_fastmath_arm64_bfloat16", "0")
        self.session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(["logits"], {"input": batch.numpy()})
        return _softmax(logits)


class OpenVinoClassifier(Classifier):
    """OpenVINO on the CPU, compiled for latency with a fixed number of threads."""

    runtime = "openvino"

    def __init__(self, base: Classifier, model_file: Path, threads: int) -> None:
        import openvino

        super().__init__(base.model_id, base.transform, base.labels, base.decode_size)
        core = openvino.Core()
        self.compiled = core.compile_model(core.read_model(str(model_file)), "CPU", openvino_config(threads))
        self.request = self.compiled.create_infer_request()

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        outputs = self.request.infer({0: batch.numpy()})
        return _softmax(outputs[self.compiled.output(0)])


def openvino_config(threads: int) -> dict[Any, Any]:
    """OpenVINO's CPU compile options: latency, `threads` threads, float32."""
    import openvino
    import openvino.properties as properties
    import openvino.properties.hint as hints

    return {
        properties.inference_num_threads: threads,
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        # No pinning: several workers on one machine would pin their threads to the same cores.
        hints.enable_cpu_pinning: False,
        # On CPUs with bfloat16 instructions (avx512_bf16 or AMX: recent EPYCs and Xeons) OpenVINO
        # computes in bfloat16 unless told otherwise; its probabilities then differ from torch's
        # by more than PARITY_TOLERANCE, and the parity check turned OpenVINO down there.
        hints.inference_precision: openvino.Type.f32,
    }


BUILDERS: dict[Runtime, Callable[[Classifier, Path, int], Classifier]] = {
    "onnxruntime": OnnxRuntimeClassifier,
    "openvino": OpenVinoClassifier,
}


def parity_problem(expected: torch.Tensor, candidate: Classifier, probe: torch.Tensor) -> str | None:
    """None if `candidate`'s probabilities on the probe batch agree with torch's, else how they differ."""
    got = candidate.predict(probe)
    if got.shape != expected.shape:
        return f"output shape {tuple(got.shape)} instead of {tuple(expected.shape)}"
    if not torch.equal(expected.topk(5, dim=1).indices, got.topk(5, dim=1).indices):
        return "a different top 5 than torch"
    difference = float((expected - got).abs().max())
    if difference > PARITY_TOLERANCE:
        return f"probabilities differ from torch by up to {difference:.2e} (limit {PARITY_TOLERANCE:.0e})"
    return None


@dataclass(frozen=True)
class RuntimeChoiceReport:
    """What a worker decided for one model, for its log and the benchmark."""

    chosen: Runtime
    images_per_s: dict[str, float]
    """Batch-of-one speed of every runtime that passed parity (torch always does)."""
    rejected: dict[str, str]


def accelerate(
    reference: TorchClassifier,
    spec: ModelSpec,
    model_dir: Path,
    probe: torch.Tensor,
    choice: RuntimeChoice,
    threads: int,
) -> tuple[Classifier, RuntimeChoiceReport]:
    """The classifier to serve `spec` with: `choice`, or for `auto` the fastest that passed parity.

    Any runtime that cannot be built or disagrees with torch is skipped with its reason; torch
    itself is always the fallback. `auto` keeps the first of PREFERENCE that passed unless another
    is CLEARLY_FASTER.
    """
    candidates: list[Runtime] = list(BUILDERS) if choice == "auto" else [choice] if choice != "torch" else []
    # torch runs first, before other runtimes start thread pools of their own.
    expected = reference.predict(probe)
    speeds: dict[str, float] = {"torch": _speed(reference, probe[:1])} if choice == "auto" else {}
    passed: dict[Runtime, Classifier] = {"torch": reference}
    rejected: dict[str, str] = {}
    for runtime in candidates:
        try:
            model_file = export_onnx(reference, spec, model_dir, probe.shape[-1])
            candidate = BUILDERS[runtime](reference, model_file, threads)
            problem = parity_problem(expected, candidate, probe)
        except Exception as exc:  # an optional runtime must never stop the worker
            problem = f"{type(exc).__name__}: {exc}"
        if problem is None:
            passed[runtime] = candidate
            if choice == "auto":
                speeds[runtime] = _speed(candidate, probe[:1])
        else:
            rejected[runtime] = problem
            log.warning("%s: not using %s: %s; falling back", spec.id, runtime, problem)
    if choice == "auto":
        preferred = next(runtime for runtime in PREFERENCE if runtime in passed)
        fastest = max(passed, key=lambda runtime: speeds[runtime])
        chosen: Runtime = fastest if speeds[fastest] >= CLEARLY_FASTER * speeds[preferred] else preferred
    else:
        chosen = choice if choice in passed else "torch"
    return passed[chosen], RuntimeChoiceReport(chosen, speeds, rejected)


def probe_batch(classifier: Classifier) -> torch.Tensor:
    """Real photos (a cat, a coffee) preprocessed for this model: what parity is checked on."""
    return classifier.preprocess([sample_photo(image_id) for image_id in PROBE_PHOTOS])


def _speed(classifier: Classifier, batch: torch.Tensor) -> float:
    classifier.predict(batch)
    done = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < SPEED_PROBE_SECONDS:
        classifier.predict(batch)
        done += 1
    return done / elapsed
