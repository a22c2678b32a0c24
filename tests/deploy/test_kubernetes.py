"""Kubernetes manifests: validated against Kubernetes' schemas (kubernetes-validate, strict), and
the KEDA objects (no schema offline) checked against the rest of the stack."""

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from imgclf.jobs.queue import QUEUE_NAME
from tests.conftest import tool

K8S = Path(__file__).parents[2] / "deploy" / "k8s"
CORE = ["redis.yaml", "data.yaml", "prepare-job.yaml", "web.yaml", "worker.yaml"]
KUBERNETES_VERSION = "1.30.0"


def documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    command = [tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path)]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.mark.parametrize("name", CORE)
def test_manifest_is_valid_kubernetes(name: str) -> None:
    result = validate(K8S / name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    deployment = documents("worker.yaml")[0]
    deployment["spec"]["replicas"] = "two"
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(deployment))
    assert validate(tmp_path / "broken.yaml").returncode != 0


def test_kustomization_applies_every_manifest() -> None:
    kustomization = documents("kustomization.yaml")[0]
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk


def test_keda_scales_the_worker_deployment_on_the_rq_queue_list() -> None:
    (auth, scaled) = documents("keda.yaml")
    worker = documents("worker.yaml")[0]
    assert scaled["kind"] == "ScaledObject" and scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == f"rq:queue:{QUEUE_NAME}"
    redis_service = documents("redis.yaml")[0]
    assert trigger["metadata"]["address"] == f"{redis_service['metadata']['name']}:6379"
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert auth["spec"]["secretTargetRef"][0]["name"] == "imgclf-redis"
    assert scaled["spec"]["minReplicaCount"] >= 1  # keep a warm worker: models take seconds to load


def test_pods_run_as_the_image_user_and_mount_data_read_only() -> None:
    for name in ("web.yaml", "worker.yaml"):
        deployment = next(doc for doc in documents(name) if doc["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        mounts = pod["containers"][0]["volumeMounts"]
        assert all(mount["readOnly"] for mount in mounts if mount["name"] == "data")
