"""The Dockerfile, checked statically: hadolint and the rules of these images. The container
suite (tests/containers) builds and runs them for real where a Docker engine runs."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import tool

ROOT = Path(__file__).parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
sys.path.insert(0, str(ROOT / "deploy" / "docker"))
from requirements import requirements  # noqa: E402  (a build script, not a package)


def stage(name: str) -> str:
    """The text of one build stage, from its FROM line to the next."""
    start = re.search(rf"^FROM \S+ AS {name}$", DOCKERFILE, re.MULTILINE)
    assert start, name
    end = DOCKERFILE.find("\nFROM ", start.end())
    return DOCKERFILE[start.start() : end if end > 0 else None]


def test_hadolint_finds_nothing() -> None:
    command = [tool("hadolint"), "--no-color", "Dockerfile"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_frontend_image_is_pulled_and_the_base_is_pinned_by_digest() -> None:
    # `# syntax=` makes BuildKit pull a frontend from a registry, which fails where none is reachable.
    assert not re.search(r"^#\s*syntax\s*=", DOCKERFILE, re.MULTILINE | re.IGNORECASE)
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base.group(1))
    compose = (ROOT / "compose.yaml").read_text()
    assert f"PYTHON_IMAGE: ${{PYTHON_IMAGE:-{base.group(1)}}}" in compose


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    # So that editing the code reinstalls nothing: the build cache keeps the dependency layers.
    # The lists are generated apart, so that editing pyproject.toml's tool settings keeps them.
    copy_source = DOCKERFILE.index("COPY src ")
    for role in ("web", "worker", "export"):
        assert DOCKERFILE.index(f"COPY --from=requirements /build/{role}.txt") < copy_source, role
        assert DOCKERFILE.index(f"-r {role}.txt") < copy_source, role
        assert "COPY pyproject.toml" not in stage(f"{role}-deps"), role
    for target in ("web", "worker", "export"):
        assert "COPY --from=wheel /wheels /wheels" in stage(target)
        assert "COPY --from=" not in stage(target).replace("COPY --from=wheel", ""), "no venv copied between stages"


@pytest.mark.parametrize("role", ["web", "worker"])
def test_web_and_worker_images_install_no_torch(role: str) -> None:
    names = {re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower() for line in requirements(PYPROJECT, role)}
    assert not names & {"torch", "torchvision", "timm", "onnx", "openvino"}
    assert ("onnxruntime" in names) == (role == "worker")
    assert "torch" in " ".join(requirements(PYPROJECT, "export"))


@pytest.mark.parametrize(("target", "command"), [("web", "web"), ("worker", "worker"), ("export", "prepare")])
def test_each_image_runs_as_a_non_root_user(target: str, command: str) -> None:
    text = stage(target)
    user = re.search(r"^USER (\S+)", text, re.MULTILINE)
    assert user and not user.group(1).startswith(("root", "0"))
    assert 'ENTRYPOINT ["imgclf"]' in text and f'CMD ["{command}"]' in text


@pytest.mark.parametrize("target", ["web", "worker"])
def test_health_checks_start_no_python(target: str) -> None:
    check = re.search(r"^HEALTHCHECK .*\n(?:.*\\\n)*.*CMD (.+)$", stage(target), re.MULTILINE)
    assert check and check.group(1).startswith('["bash", "-c"')
    assert "python" not in check.group(1) and "imgclf" not in check.group(1)


def test_a_dockerignore_that_keeps_local_files_out() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"]  # everything out, then only what the build needs
    assert {"!pyproject.toml", "!constraints.txt", "!src/", "!deploy/docker/requirements.py"} <= set(ignore)
