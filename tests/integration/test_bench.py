"""`imgclf bench --smoke`: the harness runs every part end to end and writes its report.
(Durations are printed, never asserted.)"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def cannot_run(runtime: str, model_dir: Path) -> str | None:
    """Why `runtime` cannot run on this machine at all, or None if it builds here."""
    from imgclf.models.export import export_model
    from imgclf.models.loading import load_classifier
    from imgclf.models.registry import MODELS
    from imgclf.models.runtimes import BUILDERS, build

    if runtime not in BUILDERS:
        return None
    spec = MODELS["efficientnet_lite0"]
    manifest = export_model(load_classifier(spec, model_dir), spec, model_dir, 1)
    try:
        build(runtime, manifest, model_dir, 2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def test_the_smoke_benchmark_writes_every_measurement(tmp_path: Path, model_dir: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMGCLF_")}
    result = subprocess.run(
        [sys.executable, "-m", "imgclf", "bench", "--smoke", "--out", str(tmp_path)],
        env={**env, "IMGCLF_MODEL_DIR": str(model_dir)},  # the session's cache: ONNX exports are reused
        capture_output=True,
        text=True,
        timeout=900,
    )
    # The bench stops at a runtime that was not used (bench/runner.py's RuntimeError). A runtime
    # that cannot run on this machine at all skips the test; one that runs but disagrees with
    # torch fails it.
    refused = re.search(r"RuntimeError: \S+ on (\w+): ", result.stderr) if result.returncode else None
    if refused and (reason := cannot_run(refused[1], model_dir)):
        pytest.skip(f"{refused[1]} cannot run on this machine: {reason}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (tmp_path / "benchmarks.md").read_text()
    for section in ("## The service against a server without a queue", "## Goals", "## 1. Model only",
                    "## 2. Pipeline", "## 3. Pipeline ceiling", "## 4. Workers", "## 5. End to end",
                    "## 5b. Configurations", "## 6. Synchronous reference", "## 7. The lesson's design", "## 8. Memory",
                    "result cache"):  # fmt: skip
        assert section in report
    assert report.index("## The service against a server without a queue") < report.index("## Goals")
    results = json.loads((tmp_path / "benchmarks.json").read_text())
    assert all(row["images_per_s"]["median"] > 0 for row in results["model_only"] + results["pipeline"])
    assert {row["runtime"] for row in results["pipeline"]} == {"torch", "onnxruntime", "openvino"}
    assert all(row["jobs_per_s"]["median"] > 0 for row in results["workers"])
    assert all(level["completed"] > 0 and level["failed"] == 0 for level in results["end_to_end"]["levels"])
    assert results["end_to_end"]["cache_hit"]["requests"] > 0
    for ceiling in results["ceiling"]:
        assert ceiling["images_per_s"]["median"] > 0 and ceiling["cores_used"] > 0
        assert all(ceiling["phase_ms"][phase] > 0 for phase in ("decode", "preprocess", "inference"))
    service_levels = {level["concurrency"] for level in results["end_to_end"]["levels"]}
    reference_levels = results["reference"]["levels"]
    assert reference_levels and {level["concurrency"] for level in reference_levels} <= service_levels
    assert all(level["completed"] > 0 and level["failed"] == 0 for level in reference_levels)
    assert all(level["jobs_per_s"]["median"] > 0 for level in reference_levels)
    assert all(level["cpu_ms_per_classification"]["reference"] > 0 for level in reference_levels)
    for level in results["end_to_end"]["levels"]:
        cpu = level["cpu_ms_per_classification"]
        assert cpu["workers"] > 0 and cpu["web"] > 0 and cpu["service"] > 0
    setups = {(row["workers"], row["threads_per_worker"]): row for row in results["configurations"]}
    assert {(2, 1), (3, 1)} <= set(setups) and sum(row["default"] for row in setups.values()) == 1
    assert all(row["completed"] > 0 and row["failed"] == 0 for row in setups.values())
    assert all(len(row["jobs_per_s"]["runs"]) == results["options"]["repeats"] for row in setups.values())
    assert "runs of each are interleaved" in report
    goals = results["goals"]
    assert 0 < goals["default_over_fastest_configuration"] <= 1
    micro = results["micro_batching"]
    assert [row["batch"] for row in micro["batches"]] == [1, 2] and micro["threads"] >= 1
    assert goals["micro_batching_best_over_single"] >= 1  # the best batch includes batch 1 itself
    assert "Micro-batching: the same forward pass as a worker runs it" in report
    for key in ("ceiling_images_per_s", "end_to_end_over_ceiling", "cpu_over_reference",
                "p50_at_1_user_over_reference", "decode_preprocess_over_forward", "worker_cores_busy_fraction",
                "worker_start_s", "worker_primary_peak_rss_mib"):  # fmt: skip
        assert goals[key] > 0, key
    assert goals["versus_reference"] and all(row["ratio"] > 0 for row in goals["versus_reference"])
    assert results["baseline"]["jobs_per_s"]["median"] > 0
    assert results["memory"]["worker_peak_rss_mib"] > results["memory"]["web_peak_rss_mib"] > 0
    assert (tmp_path / "benchmarks.png").read_bytes()[:4] == b"\x89PNG"
