"""Kubernetes manifests: validated against Kubernetes' schemas (kubernetes-validate, strict), the
KEDA objects (no schema offline) checked against the rest of the stack, and the hardening of the
compose stack kept: the three images, read-only non-root containers with no capabilities, and
the Redis password in files only (never in an environment variable or on a command line)."""

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
ROOT = K8S.parents[1]
POD_FILES = {"redis": "redis.yaml", "web": "web.yaml", "worker": "worker.yaml", "prepare": "prepare-job.yaml"}
PASSWORD_FILE = "IMGCLF_REDIS_PASSWORD_FILE"


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


def pod(name: str) -> dict[str, Any]:
    """The pod template of the StatefulSet, Deployment or Job in `name`."""
    (workload,) = (doc for doc in documents(name) if doc["kind"] in {"StatefulSet", "Deployment", "Job"})
    return workload["spec"]["template"]["spec"]


def container(name: str) -> dict[str, Any]:
    (only,) = pod(name)["containers"]
    return only


def env(name: str) -> dict[str, str]:
    return {var["name"]: var.get("value", "") for var in container(name).get("env", [])}


def directives(config: str) -> list[str]:
    return [line.strip() for line in config.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("name", POD_FILES.values())
def test_every_container_is_hardened(name: str) -> None:
    context = container(name)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    seccomp = context.get("seccompProfile") or pod(name)["securityContext"]["seccompProfile"]
    assert seccomp == {"type": "RuntimeDefault"}
    user = context.get("runAsUser", pod(name)["securityContext"].get("runAsUser"))
    assert user == (999 if name == "redis.yaml" else 10001)  # the official Redis image's `redis`


def test_images_are_the_three_of_the_dockerfile_and_compose_redis() -> None:
    images = {role: container(name)["image"] for role, name in POD_FILES.items()}
    compose_redis = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["redis"]["image"]
    assert images == {
        "redis": compose_redis.removeprefix("${REDIS_IMAGE:-").removesuffix("}"),
        "web": "imgclf-web:latest",
        "worker": "imgclf-worker:latest",
        "prepare": "imgclf-export:latest",
    }
    assert "@sha256:" in images["redis"]


@pytest.mark.parametrize("name", POD_FILES.values())
def test_the_redis_password_is_in_no_environment_and_on_no_command_line(name: str) -> None:
    spec = container(name)
    assert "envFrom" not in spec
    assert not [var for var in spec.get("env", []) if "valueFrom" in var]  # no secretKeyRef
    command_line = " ".join(spec.get("command", []) + spec.get("args", []))
    assert "requirepass" not in command_line and "$(" not in command_line
    assert "@" not in env(name).get("IMGCLF_REDIS_URL", "")


@pytest.mark.parametrize("name", ["web.yaml", "worker.yaml"])
def test_web_and_worker_read_the_password_from_the_mounted_secret(name: str) -> None:
    assert env(name)["IMGCLF_REDIS_URL"] == "redis://redis:6379/0"
    (volume,) = (volume for volume in pod(name)["volumes"] if "secret" in volume)
    assert volume["secret"]["secretName"] == "imgclf-redis"
    (item,) = volume["secret"]["items"]
    (mount,) = (mount for mount in container(name)["volumeMounts"] if mount["name"] == volume["name"])
    assert mount["readOnly"] is True
    assert item["key"] == "password"
    assert env(name)[PASSWORD_FILE] == f"{mount['mountPath']}/{item['path']}"


def test_redis_runs_the_compose_config_with_the_password_from_the_secret() -> None:
    config_map = next(doc for doc in documents("redis.yaml") if doc["kind"] == "ConfigMap")
    config = config_map["data"]["redis.conf"]
    assert directives(config) == directives((ROOT / "deploy" / "redis" / "redis.conf").read_text())
    mounts = {mount["name"]: mount["mountPath"] for mount in container("redis.yaml")["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod("redis.yaml")["volumes"]}
    assert container("redis.yaml")["args"] == ["redis-server", f"{mounts['config']}/redis.conf"]
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    items = {item["key"]: f"{mounts['secret']}/{item['path']}" for item in volumes["secret"]["secret"]["items"]}
    assert directives(config)[-1] == f"include {items['redis-auth.conf']}"
    for probe in ("readinessProbe", "livenessProbe"):
        check = container("redis.yaml")[probe]["exec"]["command"]
        assert check[:2] == ["sh", "-c"] and f'REDISCLI_AUTH="$(head -n 1 {items["password"]})"' in check[2]


def test_keda_reads_the_password_key_of_the_secret() -> None:
    (auth, _) = documents("keda.yaml")
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "imgclf-redis", "key": "password"}]


def test_worker_probes_read_the_ready_file_without_starting_imgclf() -> None:
    worker = container("worker.yaml")
    for probe in ("readinessProbe", "livenessProbe"):
        command = worker[probe]["exec"]["command"]
        assert command[:2] == ["bash", "-c"] and "imgclf" not in command[2]
        assert '$(stat -c %Y "$IMGCLF_WORKER_READY_FILE")' in command[2]
        assert worker[probe]["timeoutSeconds"] >= 5


@pytest.mark.parametrize(
    ("name", "size"), [("web.yaml", "64Mi"), ("worker.yaml", "16Mi"), ("prepare-job.yaml", "256Mi")]
)
def test_tmp_is_a_size_limited_empty_dir(name: str, size: str) -> None:
    (mount,) = (mount for mount in container(name)["volumeMounts"] if mount["mountPath"] == "/tmp")
    (volume,) = (volume for volume in pod(name)["volumes"] if volume["name"] == mount["name"])
    assert volume["emptyDir"] == {"sizeLimit": size}


def test_memory_limits_match_what_compose_allows() -> None:
    limits = {name: container(name)["resources"]["limits"]["memory"] for name in POD_FILES.values()}
    assert limits == {"redis.yaml": "1Gi", "web.yaml": "768Mi", "worker.yaml": "768Mi", "prepare-job.yaml": "2Gi"}
    assert container("web.yaml")["resources"]["limits"]["cpu"] == "500m"
