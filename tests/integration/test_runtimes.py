"""ONNX Runtime and OpenVINO against torch, on real photos, and the fallback when one misbehaves."""

from pathlib import Path
from typing import Any

import pytest
import torch

from imgclf.cli import main
from imgclf.images.samples import sample_photo
from imgclf.models import runtimes, serving
from imgclf.models.classifier import Classifier, TorchClassifier
from imgclf.models.loading import load_classifier
from imgclf.models.registry import MODELS
from imgclf.models.runtimes import (
    BUILDERS,
    OpenVinoClassifier,
    accelerate,
    export_onnx,
    onnx_path,
    openvino_config,
    parity_problem,
    probe_batch,
)
from tests.conftest import CATS

SPEC = MODELS["efficientnet_lite0"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> TorchClassifier:
    return load_classifier(SPEC, model_dir)


def built_or_skipped(runtime: runtimes.Runtime, reference: TorchClassifier, model_dir: Path) -> Classifier:
    """`runtime` built on the exported model; the test is skipped, with the reason, on a machine
    where the runtime cannot run at all. One that runs but disagrees with torch still fails."""
    model_file = export_onnx(reference, SPEC, model_dir, 224)
    try:
        return BUILDERS[runtime](reference, model_file, 2)
    except Exception as exc:
        pytest.skip(f"{runtime} cannot run on this machine: {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_an_accelerated_runtime_matches_torch_and_is_used(
    reference: TorchClassifier, model_dir: Path, runtime: runtimes.Runtime
) -> None:
    built_or_skipped(runtime, reference, model_dir)
    probe = probe_batch(reference)
    classifier, report = accelerate(reference, SPEC, model_dir, probe, runtime, threads=2)
    assert report.chosen == runtime and classifier.runtime == runtime
    assert report.rejected == {}
    cat, coffee = classifier.top_k(classifier.predict(probe))
    assert cat[0][0] in CATS and coffee[0][0] == "espresso"
    expected = reference.predict(probe)
    assert float((classifier.predict(probe) - expected).abs().max()) < runtimes.PARITY_TOLERANCE


def test_auto_keeps_the_preferred_runtime_unless_another_is_clearly_faster(
    reference: TorchClassifier, model_dir: Path
) -> None:
    for runtime in BUILDERS:
        built_or_skipped(runtime, reference, model_dir)
    classifier, report = accelerate(reference, SPEC, model_dir, probe_batch(reference), "auto", threads=2)
    speeds = report.images_per_s
    assert set(speeds) == {"torch", "onnxruntime", "openvino"}
    fastest = max(speeds, key=lambda runtime: speeds[runtime])
    if speeds[fastest] >= runtimes.CLEARLY_FASTER * speeds["onnxruntime"]:
        assert report.chosen == fastest
    else:
        assert report.chosen == "onnxruntime"
    assert classifier.runtime == report.chosen
    assert report.chosen != "torch"  # torch is several times slower on these models


def test_openvino_is_asked_for_float32_and_runs_in_it(reference: TorchClassifier, model_dir: Path) -> None:
    classifier = built_or_skipped("openvino", reference, model_dir)
    assert isinstance(classifier, OpenVinoClassifier)
    import openvino
    import openvino.properties.hint as hints

    # Asked for explicitly: on a CPU with bfloat16 instructions the default would be bfloat16,
    # which the compiled model reports below (on other CPUs float32 is all it can report).
    assert openvino_config(2)[hints.inference_precision] == openvino.Type.f32
    assert classifier.compiled.get_property(hints.inference_precision) == openvino.Type.f32


def test_the_export_is_done_once_and_reused(reference: TorchClassifier, model_dir: Path) -> None:
    first = export_onnx(reference, SPEC, model_dir, 224)
    stamp = first.stat().st_mtime_ns
    assert export_onnx(reference, SPEC, model_dir, 224) == first == onnx_path(SPEC, model_dir)
    assert first.stat().st_mtime_ns == stamp
    assert "efficientnet-lite0-57934424" in first.name and "torch" in first.name


class Scrambled(Classifier):
    """A runtime that gets the classes wrong: its probabilities are torch's, rolled by one class."""

    runtime = "onnxruntime"

    def __init__(self, base: Classifier, model_file: Path, threads: int) -> None:
        super().__init__(base.model_id, base.transform, base.labels, base.decode_size)
        self.base = base

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        return self.base.predict(batch).roll(1, dims=1)


def test_a_runtime_that_disagrees_with_torch_is_not_used(
    reference: TorchClassifier, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(runtimes.BUILDERS, "onnxruntime", Scrambled)
    classifier, report = accelerate(reference, SPEC, model_dir, probe_batch(reference), "onnxruntime", threads=2)
    assert classifier is reference and report.chosen == "torch"
    assert report.rejected == {"onnxruntime": "a different top 5 than torch"}


def test_a_runtime_that_cannot_load_the_model_falls_back_to_torch(reference: TorchClassifier, tmp_path: Path) -> None:
    broken = onnx_path(SPEC, tmp_path)
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not an onnx model")
    classifier, report = accelerate(reference, SPEC, tmp_path, probe_batch(reference), "openvino", threads=2)
    assert classifier is reference
    assert "openvino" in report.rejected


def test_small_differences_pass_and_large_ones_do_not(reference: TorchClassifier) -> None:
    probe = probe_batch(reference)
    expected = reference.predict(probe)

    class Shifted(Classifier):
        def __init__(self, shift: float) -> None:
            super().__init__(reference.model_id, reference.transform, reference.labels, reference.decode_size)
            self.shift = shift

        def predict(self, batch: torch.Tensor) -> torch.Tensor:
            return expected + self.shift

    assert parity_problem(expected, Shifted(1e-5), probe) is None
    assert "differ from torch by up to" in (parity_problem(expected, Shifted(5e-3), probe) or "")


def test_imgclf_classify_loads_the_model_as_a_worker_does(
    reference: TorchClassifier,
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built_or_skipped("onnxruntime", reference, model_dir)
    monkeypatch.setenv("IMGCLF_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("IMGCLF_RUNTIME", "onnxruntime")
    served: list[str] = []
    load_for_serving = serving.load_for_serving

    def spy(*args: Any) -> tuple[Classifier, runtimes.RuntimeChoiceReport]:
        classifier, report = load_for_serving(*args)
        served.append(classifier.runtime)
        return classifier, report

    monkeypatch.setattr(serving, "load_for_serving", spy)
    sample_photo("coffee.jpg").save(tmp_path / "coffee.jpg")
    assert main(["classify", "efficientnet_lite0", str(tmp_path / "coffee.jpg")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert served == ["onnxruntime"]
    assert len(lines) == 5 and lines[0].endswith("%  espresso")

    (tmp_path / "notes.jpg").write_text("not a picture")
    assert main(["classify", "efficientnet_lite0", str(tmp_path / "notes.jpg")]) == 2
    assert capsys.readouterr().err.startswith("imgclf classify: The file could not be decoded as an image")
