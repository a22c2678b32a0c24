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

from imgclf.cli import main
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


def test_only_the_load_balancer_is_published() -> None:
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"lb", "dashboard"}
    assert all(port.startswith("127.0.0.1:") for port in SERVICES["dashboard"]["ports"])
    assert "dashboard" in SERVICES["dashboard"]["profiles"]


def test_redis_persists_has_a_password_and_a_healthcheck() -> None:
    redis = SERVICES["redis"]
    assert redis["image"].startswith("redis:")
    assert redis["command"][1:3] == ["--appendonly", "yes"]
    assert "--requirepass" in redis["command"]
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_web_and_workers_wait_for_a_healthy_redis_and_read_data_read_only() -> None:
    for name in ("web", "worker"):
        service = SERVICES[name]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert sorted(service["volumes"]) == ["images:/data/images:ro", "models:/data/models:ro"]
        assert service["restart"] == "unless-stopped"
    assert SERVICES["lb"]["depends_on"]["web"]["condition"] == "service_healthy"
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


@pytest.mark.parametrize("name", ["web", "worker", "prepare"])
def test_service_commands_and_health_checks_are_real_imgclf_commands(name: str) -> None:
    service = SERVICES[name]
    commands = [service["command"]]
    if "healthcheck" in service:
        commands.append(service["healthcheck"]["test"][2:])
    for command in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0


def test_every_imgclf_variable_is_a_setting() -> None:
    fields = {f"IMGCLF_{name.upper()}" for name in Settings.model_fields}
    for service in SERVICES.values():
        for variable in service.get("environment") or {}:
            if variable.startswith("IMGCLF_"):
                assert variable in fields, variable


def test_required_variables_are_in_the_example_env_file() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_TEXT))
    example = (ROOT / "deploy" / "env.example").read_text()
    assert required == {"REDIS_PASSWORD", "DASHBOARD_PASSWORD"}
    assert all(re.search(rf"^{variable}=", example, re.MULTILINE) for variable in required)


def test_nginx_config_balances_the_web_service() -> None:
    config = (ROOT / "deploy" / "nginx" / "default.conf").read_text()
    assert re.search(r"upstream imgclf_web \{\s*server web:8000;", config)
    assert "proxy_pass http://imgclf_web;" in config
