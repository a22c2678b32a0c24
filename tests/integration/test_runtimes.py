"""Exports, ONNX Runtime and OpenVINO against torch on real photos, the fallback when a runtime
misbehaves, and a worker's model loading without torch."""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from redis import Redis

from imgclf.cli import main
from imgclf.config import Settings
from imgclf.images.samples import sample_photo
from imgclf.models import runtimes, serving
from imgclf.models.classifier import Classifier
from imgclf.models.export import export_model
from imgclf.models.loading import TorchClassifier, load_classifier
from imgclf.models.manifest import (
    ExportManifest,
    manifest_path,
    onnx_path,
    probe_path,
    read_manifest,
    write_manifest,
)
from imgclf.models.registry import MODELS
from imgclf.models.runtimes import OpenVinoClassifier, build, openvino_config, parity_problem
from imgclf.models.serving import ModelNotServable, auto_runtime, load_for_serving
from imgclf.ops.processes import spawn, stop, wait_for_workers
from tests.conftest import CATS

SPEC = MODELS["efficientnet_lite0"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> TorchClassifier:
    return load_classifier(SPEC, model_dir)


@pytest.fixture(scope="module")
def manifest(reference: TorchClassifier, model_dir: Path) -> ExportManifest:
    return export_model(reference, SPEC, model_dir, 1)


def built_or_skipped(runtime: runtimes.Runtime, manifest: ExportManifest, model_dir: Path) -> Classifier:
    """`runtime` built on the exported model; the test is skipped, with the reason, on a machine
    where the runtime cannot run at all. One that runs but disagrees with torch still fails."""
    try:
        return build(runtime, manifest, model_dir, 2)
    except Exception as exc:
        pytest.skip(f"{runtime} cannot run on this machine: {type(exc).__name__}: {exc}")


def probe_batch(classifier: Classifier, model_dir: Path) -> np.ndarray:
    from imgclf.images.decoding import open_rgb

    photos = [
        open_rgb(probe_path(model_dir, photo), 10**8, classifier.decode_size) for photo in ("chelsea.jpg", "coffee.jpg")
    ]
    return classifier.preprocess(photos)


def test_the_export_writes_the_model_its_manifest_and_probe_photos_once(
    reference: TorchClassifier, manifest: ExportManifest, model_dir: Path
) -> None:
    model_file = onnx_path(model_dir, SPEC.id, SPEC.weights_file)
    written = manifest_path(model_dir, SPEC.id, SPEC.weights_file)
    stamps = model_file.stat().st_mtime_ns, written.stat().st_mtime_ns
    assert (
        export_model(reference, SPEC, model_dir, 1) == manifest == read_manifest(model_dir, SPEC.id, SPEC.weights_file)
    )
    assert (model_file.stat().st_mtime_ns, written.stat().st_mtime_ns) == stamps
    assert model_file.name == "efficientnet_lite0-efficientnet-lite0-57934424.onnx"
    stored = json.loads(written.read_text())
    assert stored["preprocessing"] == {
        "resize": 256, "crop": 224, "interpolation": "bicubic", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]
    }  # fmt: skip
    assert len(stored["labels"]) == 1000 and stored["labels"][967] == "espresso"
    assert stored["weights_file"] == SPEC.weights_file and stored["torch_version"]
    cat, coffee = (stored["reference"][photo] for photo in ("chelsea.jpg", "coffee.jpg"))
    assert reference.labels[cat[0][0]] in CATS and coffee[0][0] == 967 and len(cat) == 5
    assert probe_path(model_dir, "chelsea.jpg").is_file()
    assert stored["speeds"]["onnxruntime"] > 0 and stored["fastest"] in stored["speeds"]


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_an_exported_model_on_a_runtime_matches_torch_and_is_used(
    reference: TorchClassifier, manifest: ExportManifest, model_dir: Path, runtime: runtimes.Runtime
) -> None:
    built_or_skipped(runtime, manifest, model_dir)
    classifier, report = load_for_serving(SPEC, model_dir, runtime, threads=2)
    assert report.chosen == runtime == classifier.runtime and report.rejected == {}
    probe = probe_batch(classifier, model_dir)
    cat, coffee = classifier.top_k(classifier.predict(probe))
    assert cat[0][0] in CATS and coffee[0][0] == "espresso"
    assert np.abs(classifier.predict(probe) - reference.predict(probe)).max() < runtimes.PARITY_TOLERANCE


def test_auto_is_the_runtime_timed_fastest_at_export_for_every_worker(
    manifest: ExportManifest, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The export timed the whole pipeline on each installed runtime; auto runs the fastest.
    assert manifest.speeds["onnxruntime"] > 0 and manifest.fastest == max(
        manifest.speeds, key=lambda runtime: manifest.speeds[runtime]
    )
    chosen = {load_for_serving(SPEC, model_dir, "auto", threads=1)[1].chosen for _ in range(3)}
    assert chosen == {manifest.fastest}
    # Whatever a later timing would say, every worker reads the same manifest: a copy naming
    # OpenVINO runs OpenVINO where it is installed, and ONNX Runtime where it is not.
    copy = dataclasses.replace(manifest, fastest="openvino")
    (tmp_path / "onnx").mkdir()
    onnx_path(tmp_path, SPEC.id, SPEC.weights_file).write_bytes(
        onnx_path(model_dir, SPEC.id, SPEC.weights_file).read_bytes()
    )
    shutil.copytree(probe_path(model_dir, "chelsea.jpg").parent, probe_path(tmp_path, "chelsea.jpg").parent)
    write_manifest(tmp_path, copy)
    if runtimes.installed("openvino"):
        assert load_for_serving(SPEC, tmp_path, "auto", threads=1)[1].chosen == "openvino"
    monkeypatch.setattr(serving, "installed", lambda runtime: runtime != "openvino")
    assert load_for_serving(SPEC, tmp_path, "auto", threads=1)[1].chosen == "onnxruntime"


def test_openvino_is_asked_for_float32_and_runs_in_it(manifest: ExportManifest, model_dir: Path) -> None:
    classifier = built_or_skipped("openvino", manifest, model_dir)
    assert isinstance(classifier, OpenVinoClassifier)
    import openvino
    import openvino.properties.hint as hints

    # Asked for explicitly: on a CPU with bfloat16 instructions the default would be bfloat16,
    # which the compiled model reports below (on other CPUs float32 is all it can report).
    assert openvino_config(2)[hints.inference_precision] == openvino.Type.f32
    assert classifier.compiled.get_property(hints.inference_precision) == openvino.Type.f32


class Scrambled(runtimes.OnnxRuntimeClassifier):
    """A runtime that gets the classes wrong: its probabilities rolled by one class."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.roll(super().predict(batch), 1, axis=1)


def test_a_runtime_that_disagrees_with_torch_is_not_used(
    manifest: ExportManifest, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(runtimes.BUILDERS, "onnxruntime", Scrambled)
    classifier, report = load_for_serving(SPEC, model_dir, "onnxruntime", threads=2)
    assert classifier.runtime == report.chosen == "torch"
    assert report.rejected == {"onnxruntime": "a different top 5 than torch on chelsea.jpg"}
    # Without torch to fall back on, the model is refused with that reason.
    monkeypatch.setattr(serving, "torch_installed", lambda: False)
    with pytest.raises(ModelNotServable, match="a different top 5 than torch"):
        load_for_serving(SPEC, model_dir, "onnxruntime", threads=2)


def test_a_runtime_that_cannot_load_the_model_falls_back_to_torch(
    manifest: ExportManifest, model_dir: Path, tmp_path: Path
) -> None:
    # A copy of the export whose ONNX file is damaged.
    for source in (manifest_path, onnx_path):
        target = source(tmp_path, SPEC.id, SPEC.weights_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source(model_dir, SPEC.id, SPEC.weights_file).read_bytes())
    onnx_path(tmp_path, SPEC.id, SPEC.weights_file).write_bytes(b"not an onnx model")
    classifier, report = load_for_serving(SPEC, tmp_path, "openvino", threads=2)
    assert classifier.runtime == "torch" and "openvino" in report.rejected


def test_small_differences_pass_and_large_ones_do_not(manifest: ExportManifest, model_dir: Path) -> None:
    class Shifted(runtimes.OnnxRuntimeClassifier):
        shift = 0.0

        def predict(self, batch: np.ndarray) -> np.ndarray:
            return super().predict(batch) + self.shift

    model_file = onnx_path(model_dir, SPEC.id, SPEC.weights_file)
    close, far = Shifted(manifest, model_file, 1), Shifted(manifest, model_file, 1)
    close.shift, far.shift = 1e-5, 5e-3
    assert parity_problem(close, manifest, model_dir) is None
    assert "differ from torch by up to" in (parity_problem(far, manifest, model_dir) or "")


def test_a_model_with_no_export_and_no_torch_is_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving, "torch_installed", lambda: False)
    with pytest.raises(ModelNotServable, match="no ONNX export"):
        load_for_serving(SPEC, tmp_path, "auto", threads=1)
    with pytest.raises(ModelNotServable, match="torch is not installed"):
        load_for_serving(SPEC, tmp_path, "torch", threads=1)


def test_serving_an_exported_model_never_imports_torch(manifest: ExportManifest, model_dir: Path) -> None:
    # A fresh interpreter, as a worker process is: what it has loaded once the model is ready.
    script = (
        "import sys; from pathlib import Path\n"
        "from imgclf.models.registry import MODELS\n"
        "from imgclf.models.serving import load_for_serving\n"
        f"classifier, report = load_for_serving(MODELS['efficientnet_lite0'], Path({str(model_dir)!r}), 'auto', 1)\n"
        "print(report.chosen, sorted({'torch', 'torchvision', 'timm'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    # `auto` runs the runtime timed fastest at export: ONNX Runtime or OpenVINO, by the machine's
    # mood at that moment (both ran in CI); neither may bring torch along.
    assert done.stdout.split() == [auto_runtime(manifest), "[]"]


def test_imgclf_classify_loads_the_model_as_a_worker_does(
    manifest: ExportManifest,
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMGCLF_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("IMGCLF_RUNTIME", "onnxruntime")
    served: list[str] = []

    def spy(*args: Any) -> tuple[Classifier, serving.RuntimeChoiceReport]:
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


def test_a_worker_serving_exports_loads_no_torch(manifest: ExportManifest, model_dir: Path, redis_url: str) -> None:
    # The real `imgclf worker` process, once ready: no torch library is mapped into it.
    settings = Settings(redis_url=redis_url, model_dir=model_dir, models=["efficientnet_lite0"], workers=1)
    process = spawn("worker", settings)
    connection = Redis.from_url(redis_url)
    try:
        wait_for_workers(connection, 1, [process])
        mapped = Path(f"/proc/{process.pid}/maps").read_text()
        assert auto_runtime(manifest) in mapped  # the runtime's library (onnxruntime or openvino)
        assert "libtorch" not in mapped and "/torch/" not in mapped
    finally:
        stop(process)
        connection.close()
