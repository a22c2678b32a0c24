"""The Dockerfile, checked statically (no Docker engine runs here): hadolint and our own rules."""

import re
import subprocess
from pathlib import Path

from tests.conftest import tool

ROOT = Path(__file__).parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_hadolint_finds_nothing() -> None:
    command = [tool("hadolint"), "--no-color", "Dockerfile"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    # So that editing the code does not reinstall torch: the build cache keeps that layer.
    install_deps = DOCKERFILE.index("pip install -c constraints.txt -r requirements.txt")
    assert install_deps < DOCKERFILE.index("COPY src ")
    assert DOCKERFILE.index("COPY pyproject.toml constraints.txt") < install_deps


def test_the_image_installs_the_pinned_cpu_torch() -> None:
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith(("torch==", "torchvision=="))
    )
    expected = f"torch=={pins['torch']} torchvision=={pins['torchvision']}"
    assert f"--index-url https://download.pytorch.org/whl/cpu {expected}" in DOCKERFILE


def test_the_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    final_stage = DOCKERFILE[DOCKERFILE.rindex("\nFROM ") :]
    user = re.search(r"^USER (\S+)", final_stage, re.MULTILINE)
    assert user and not user.group(1).startswith(("root", "0"))
    assert "HEALTHCHECK" in final_stage and '"imgclf", "healthcheck"' in final_stage
    assert 'ENTRYPOINT ["imgclf"]' in final_stage and 'CMD ["web"]' in final_stage


def test_multi_stage_and_a_dockerignore_that_keeps_local_files_out() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.MULTILINE)) >= 2
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"]  # everything out, then only what the build needs
    assert {"!pyproject.toml", "!constraints.txt", "!src/"} <= set(ignore)
