"""compose.yaml against the Compose Specification's JSON schema, plus the rules of this stack.

The schema (compose-spec.schema.json) is the Compose Specification's, as shipped in the npm
package dclint 3.1.0 (MIT; sha256 46b7d35f...e639d496); no Compose CLI runs here.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from imgclf.config import Settings

ROOT = Path(__file__).parents[2]
SCHEMA = json.loads((Path(__file__).parent / "compose-spec.schema.json").read_text())
COMPOSE_TEXT = (ROOT / "compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def schema_errors(document: object) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in Draft7Validator(SCHEMA).iter_errors(document)
    ]


def test_compose_file_follows_the_specification() -> None:
    assert schema_errors(COMPOSE) == []


def test_the_schema_check_catches_mistakes() -> None:
    broken = yaml.safe_load(COMPOSE_TEXT)
    broken["services"]["web"]["depends_on"]["redis"]["condition"] = "service_happy"
    broken["services"]["worker"]["restart_policy"] = "always"
    errors = schema_errors(broken)
    assert any("depends_on" in error for error in errors)
    assert any("restart_policy" in error for error in errors)


def test_only_the_load_balancer_is_published_on_loopback_by_default() -> None:
    published = {name: service["ports"] for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"lb": ["${BIND_ADDRESS:-127.0.0.1}:${HTTP_PORT:-8080}:8080"]}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_is_locked_down(name: str) -> None:
    service = SERVICES[name]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert service["security_opt"] == ["no-new-privileges:true"]
    # Non-root: our images say USER 10001 (tests/deploy/test_dockerfile.py); the others here.
    assert "build" in service or service["user"] in ("redis", "haproxy")


def test_third_party_images_are_pinned_by_digest_unless_overridden() -> None:
    for name in ("redis", "lb"):
        assert re.fullmatch(r"\$\{\w+_IMAGE:-[\w.:/-]+@sha256:[0-9a-f]{64}\}", SERVICES[name]["image"]), name


def test_the_redis_password_is_made_by_the_stack_and_never_in_its_configuration() -> None:
    assert not re.search(r"\$\{\w*PASSWORD", COMPOSE_TEXT) and "requirepass" not in COMPOSE_TEXT
    assert not re.findall(r"\$\{\w+:\?", COMPOSE_TEXT), "the first `up` needs no variable"
    conf = (ROOT / "deploy" / "redis" / "redis.conf").read_text()
    assert "include /run/imgclf-secrets/redis-auth.conf" in conf and "appendonly yes" in conf
    for name in ("web", "worker"):
        environment = SERVICES[name]["environment"]
        assert environment["IMGCLF_REDIS_URL"] == "redis://redis:6379/0"
        assert environment["IMGCLF_REDIS_PASSWORD_FILE"] == "/run/imgclf-secrets/redis-password"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_init_steps_run_before_what_needs_them() -> None:
    assert SERVICES["redis"]["depends_on"] == {"secrets": {"condition": "service_completed_successfully"}}
    for name in ("web", "worker"):
        service = SERVICES[name]
        assert service["depends_on"] == {
            "redis": {"condition": "service_healthy"},
            "prepare": {"condition": "service_completed_successfully"},
        }
        assert sorted(v for v in service["volumes"] if v.startswith(("images", "models"))) == [
            "images:/data/images:ro",
            "models:/data/models:ro",
        ]
        assert service["restart"] == "unless-stopped"
    for name in ("secrets", "prepare"):
        assert SERVICES[name]["restart"] == "no"
    assert SERVICES["prepare"]["build"]["target"] == "export"
    assert SERVICES["worker"]["environment"]["IMGCLF_TORCH_THREADS"] == "${WORKER_THREADS:-1}"
    assert SERVICES["worker"]["deploy"]["resources"]["limits"]["cpus"] == "${WORKER_THREADS:-1}"


def test_referenced_services_volumes_and_files_exist() -> None:
    for service in SERVICES.values():
        for dependency in service.get("depends_on") or {}:
            assert dependency in SERVICES
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).is_file(), source
            else:
                assert source in COMPOSE["volumes"], source


def test_every_imgclf_variable_is_a_setting() -> None:
    fields = {f"IMGCLF_{name.upper()}" for name in Settings.model_fields}
    for service in SERVICES.values():
        for variable in service.get("environment") or {}:
            if variable.startswith("IMGCLF_"):
                assert variable in fields, variable


def test_the_example_env_file_names_only_variables_compose_reads() -> None:
    example = (ROOT / "deploy" / "env.example").read_text()
    named = set(re.findall(r"^#?\s*(\w+)=", example, re.MULTILINE))
    assert named and named <= set(re.findall(r"\$\{(\w+):-", COMPOSE_TEXT))


def test_the_balancer_finds_replicas_by_dns_and_keeps_operator_routes_inside() -> None:
    config = (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    assert "nameserver dns 127.0.0.11:53" in config
    assert re.search(r"^\s*server-template web \d+ web:8000$", config, re.MULTILINE)
    assert "resolvers docker" in config.split("default-server", 1)[1].splitlines()[0]
    denied = re.search(r"^\s*http-request deny .*$", config, re.MULTILINE)
    assert denied and all(path in denied.group(0) for path in ("/metrics", "/readyz", "/openapi.json", "/docs"))
    assert re.search(r"^\s*bind :8080$", config, re.MULTILINE)
