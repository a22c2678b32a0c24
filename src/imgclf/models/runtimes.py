"""The runtimes that serve exported models, with no torch: ONNX Runtime and OpenVINO.

Both read the ONNX file `export.py` wrote, with the preprocessing and labels of its manifest. A
runtime must reproduce torch's answers stored in the manifest (same top 5 on the probe photos,
every one of those probabilities within `PARITY_TOLERANCE`), through the whole pipeline from the
probe files, before a worker serves the model with it (`serving.load_for_serving`).
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from imgclf.images.decoding import open_rgb
from imgclf.models.classifier import Classifier, softmax, top_indices
from imgclf.models.manifest import PROBE_MAX_PIXELS, ExportManifest, onnx_path, probe_path

Runtime = Literal["torch", "onnxruntime", "openvino"]
RUNTIMES: tuple[Runtime, ...] = ("torch", "onnxruntime", "openvino")
RuntimeChoice = Literal["auto", "torch", "onnxruntime", "openvino"]

AUTO: Runtime = "onnxruntime"
"""What `auto` means when the export's manifest names no faster runtime that is installed (see
`pipeline_speeds`): ONNX Runtime, a dependency of every install. The choice is never timed when a
worker starts: that once gave two workers of one service different runtimes."""

SPEED_ROUNDS = 3
SPEED_ROUND_SECONDS = 0.4
"""`pipeline_speeds` times each runtime in this many interleaved rounds of this many seconds and
keeps each one's median, so that a burst of other work on a shared machine hits them alike."""

PARITY_TOLERANCE = 1e-3
"""Largest difference allowed between a runtime's probabilities and torch's, on a 0..1 scale."""


class OnnxRuntimeClassifier(Classifier):
    """ONNX Runtime on the CPU."""

    runtime = "onnxruntime"

    def __init__(self, manifest: ExportManifest, model_file: Path, threads: int) -> None:
        import onnxruntime

        super().__init__(manifest.model_id, manifest.preprocessing, manifest.labels)
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

    def predict(self, batch: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(["logits"], {"input": batch})
        return softmax(logits)


class OpenVinoClassifier(Classifier):
    """OpenVINO on the CPU, compiled for latency with a fixed number of threads."""

    runtime = "openvino"

    def __init__(self, manifest: ExportManifest, model_file: Path, threads: int) -> None:
        import openvino

        super().__init__(manifest.model_id, manifest.preprocessing, manifest.labels)
        core = openvino.Core()
        self.compiled = core.compile_model(core.read_model(str(model_file)), "CPU", openvino_config(threads))
        self.request = self.compiled.create_infer_request()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        outputs = self.request.infer({0: batch})
        return softmax(outputs[self.compiled.output(0)])


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


BUILDERS: dict[Runtime, Callable[[ExportManifest, Path, int], Classifier]] = {
    "onnxruntime": OnnxRuntimeClassifier,
    "openvino": OpenVinoClassifier,
}


def build(runtime: Runtime, manifest: ExportManifest, model_dir: Path, threads: int) -> Classifier:
    """`runtime` serving the exported model of `manifest`, with `threads` inference threads."""
    return BUILDERS[runtime](manifest, onnx_path(model_dir, manifest.model_id, manifest.weights_file), threads)


def parity_problem(candidate: Classifier, manifest: ExportManifest, model_dir: Path) -> str | None:
    """None if `candidate`, fed the probe photos through the service's decoding and preprocessing,
    gives torch's top 5 of the manifest with every probability within PARITY_TOLERANCE; else how
    it differs."""
    for photo, expected in manifest.reference.items():
        picture = open_rgb(probe_path(model_dir, photo), PROBE_MAX_PIXELS, candidate.decode_size)
        (probabilities,) = candidate.predict(candidate.preprocess([picture]))
        if probabilities.shape != (len(manifest.labels),):
            return f"{len(probabilities)} classes instead of {len(manifest.labels)}"
        got = [int(index) for index in top_indices(probabilities, len(expected))]
        if got != [index for index, _ in expected]:
            return f"a different top 5 than torch on {photo}"
        difference = max(abs(float(probabilities[index]) - probability) for index, probability in expected)
        if difference > PARITY_TOLERANCE:
            return (
                f"probabilities differ from torch by up to {difference:.2e} on {photo} (limit {PARITY_TOLERANCE:.0e})"
            )
    return None


def installed(runtime: Runtime) -> bool:
    return importlib.util.find_spec(runtime) is not None


def pipeline_speeds(manifest: ExportManifest, model_dir: Path, threads: int) -> dict[str, float]:
    """Images/s of the whole pipeline (decode the probe files, preprocess, forward, top 5) on each
    installed runtime that reproduces torch's answers, with `threads` inference threads: timed once,
    at export, and kept in the manifest. The forward pass alone does not decide it: on this
    project's build machine ONNX Runtime's was faster at batch 1 while OpenVINO's pipeline ceiling
    was (docs/benchmarks.md)."""
    from imgclf.models.pipeline import Pipeline

    pipelines = {}
    for runtime in BUILDERS:
        if not installed(runtime):
            continue
        try:
            candidate = build(runtime, manifest, model_dir, threads)
            if parity_problem(candidate, manifest, model_dir) is None:
                pipelines[runtime] = Pipeline(candidate, PROBE_MAX_PIXELS)
        except Exception:  # a runtime that cannot run here is simply not a candidate
            continue
    files = [probe_path(model_dir, photo) for photo in manifest.reference]
    rounds: dict[str, list[float]] = {runtime: [] for runtime in pipelines}
    for _ in range(SPEED_ROUNDS):
        for runtime, pipeline in pipelines.items():
            done = 0
            started = time.perf_counter()
            while (elapsed := time.perf_counter() - started) < SPEED_ROUND_SECONDS:
                pipeline.run(files[done % len(files)])
                done += 1
            rounds[runtime].append(done / elapsed)
    return {runtime: round(statistics.median(rates), 1) for runtime, rates in rounds.items()}


def fastest(speeds: dict[str, float]) -> str | None:
    """The runtime of `speeds` with the most images/s (None if none was timed)."""
    return max(speeds, key=lambda runtime: speeds[runtime]) if speeds else None
