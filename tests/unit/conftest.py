"""tests/unit runs in seconds: no Redis, no model, no torch. A unit test that reaches for one of
them fails, saying where it belongs (tests/integration)."""

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

WORKER_SIDE_PACKAGES = ("torch", "torchvision", "timm", "onnxruntime", "openvino")
"""The inference packages: seconds to import, and never needed to test the web side or the parts."""

UNIT_TESTS = Path(__file__).parent

FIRST_SEEN: dict[str, str] = {}
"""Worker-side package -> what had just run when it was first seen in sys.modules."""


@pytest.fixture(scope="session")
def redis_server() -> NoReturn:
    pytest.fail("tests/unit run without Redis: move this test to tests/integration")


@pytest.fixture(scope="session")
def model_dir() -> NoReturn:
    pytest.fail("tests/unit run without a model: move this test to tests/integration")


def note_imports(after: str) -> None:
    for name in WORKER_SIDE_PACKAGES:
        if name in sys.modules:
            FIRST_SEEN.setdefault(name, after)


note_imports("the conftest.py files and plugins loaded before tests/unit")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.nodeid.endswith(".py"):
        note_imports(f"importing {report.nodeid}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    note_imports(f"running {report.nodeid}")


@pytest.fixture(scope="session", autouse=True)
def no_worker_side_imports(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a session of unit tests only: none of them imported a worker-side package."""
    yield
    if not all(UNIT_TESTS in Path(item.path).parents for item in request.session.items):
        return  # integration tests ran too, and rightly imported them
    note_imports("the last unit test")
    if FIRST_SEEN:
        found = "; ".join(f"{name} (first seen after {where})" for name, where in FIRST_SEEN.items())
        pytest.fail(
            f"tests/unit imported {found}. Unit tests run without torch or an inference runtime: move "
            "the test that needs it to tests/integration, or import the torch-free module it tests."
        )
