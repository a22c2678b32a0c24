"""A schema fuzz: schemathesis sends what /openapi.json documents, and what it does not, to a real
`imgclf web` in front of a real Redis (a database of its own, no worker: posted jobs stay queued).

Every documented operation is fuzzed, the form post included, through the server's own head and
body limits and middleware. Each answer must not be a server error and must be as documented: its
status, media type, body and headers.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import settings
from jsonschema import Draft202012Validator
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from imgclf.ops.embedded_redis import free_port
from tests.conftest import make_settings, running_web

# Loaded here, not for every run (pyproject.toml's addopts turn their automatic loading off).
pytest_plugins = ["schemathesis.pytest.plugin"]

EXAMPLES = 200
"""Requests Hypothesis generates per operation, after the schema's examples and schemathesis' boundary
cases: one to two minutes for this module's 18 operations on a 2-core machine, as busy as it is (a route
that hangs adds 5 s per retried request)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    # Input the schema rules out (a wait that is no integer in 0..30, a Sec-Fetch-Site no browser
    # sends) must be refused with a 4xx.
    negative_data_rejection,
    # Methods a path does not document answer 405 with an Allow header.
    unsupported_method,
]
"""Not checked: `positive_data_acceptance` (ids are valid by the schema yet unknown to the catalogue
and the queue, and rightly 404 or 422: the schema cannot list ids that change at run time);
`allow_header_conformance` (OPTIONS /classifications answers `Allow: GET`, Starlette's answer for
two routes on one path); the checks of authentication and of resources that links tie together,
which this API has none of."""

CONFIG = SchemathesisConfig.from_dict(
    {
        # Every route answers in milliseconds, and no fuzzed job id exists for a long poll to wait on.
        "request-timeout": 5,
        # A 503 is a documented answer of some routes (a full queue, Redis unreachable, /readyz with
        # no worker); status_code_conformance fails it on any other, and a 500 fails everywhere.
        "checks": {
            "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
            # Any 4xx is a refusal (the body limit's 413 too); a 5xx is for not_a_server_error to judge.
            "negative_data_rejection": {"expected-statuses": ["4xx", "5xx"]},
        },
    }
)


@pytest.fixture(scope="module")
def web_server(fresh_redis_url: Callable[[], str], image_dir: Path, model_dir: Path) -> Iterator[str]:
    """An `imgclf web` of this module's own, on a Redis database of its own."""
    with running_web(make_settings(fresh_redis_url(), image_dir, model_dir, port=free_port())) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(web_server: str) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{web_server}/openapi.json", config=CONFIG)


@pytest.fixture
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's `from_fixture` reads and rewrites `node._nodeid`, which pytest 9.2 no
    # longer has (it keeps the id in `_id`): without it the test fails before any request.
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


def test_every_route_but_the_docs_is_documented(web_server: str) -> None:
    paths = httpx.get(f"{web_server}/openapi.json").json()["paths"]
    assert {(method.upper(), path) for path, operations in paths.items() for method in operations} == {
        ("GET", "/"),
        ("GET", "/classifications"),
        ("POST", "/classifications"),
        ("GET", "/images/{image_id}"),
        ("GET", "/info"),
        ("GET", "/classifications/{job_id}"),
        ("GET", "/results/{job_id}"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("POST", "/api/v1/classifications"),
        ("GET", "/api/v1/classifications/{job_id}"),
        ("DELETE", "/api/v1/classifications/{job_id}"),
        ("GET", "/api/v1/classifications/{job_id}/events"),
        ("GET", "/api/v1/classifications/{job_id}/image"),
        ("GET", "/api/v1/classifications/{job_id}/chart.png"),
        ("POST", "/api/v1/comparisons"),
        ("GET", "/api/v1/comparisons/{comparison_id}"),
        ("GET", "/compare"),
        ("POST", "/compare"),
        ("GET", "/comparisons/{comparison_id}"),
        ("GET", "/api/v1/models"),
        ("GET", "/api/v1/images"),
        ("GET", "/api/v1/images/{image_id}/thumbnail"),
    }


def test_the_spec_is_an_openapi_31_document(api_schema: BaseSchema) -> None:
    assert str(api_schema.raw_schema["openapi"]).startswith("3.1.")
    api_schema.validate()  # against the OpenAPI 3.1 schema: what Swagger UI at /docs renders


def test_every_v1_request_and_answer_has_an_example_of_its_schema(web_server: str) -> None:
    """What /docs shows and schemathesis sends first: an example for every parameter, body and
    answer of /api/v1 (photos excepted), valid against its own schema."""
    spec = httpx.get(f"{web_server}/openapi.json").json()
    documented: list[tuple[str, dict[str, Any], list[Any]]] = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                documented.append(
                    (f"{where} {parameter['name']}", parameter["schema"], parameter["schema"].get("examples", []))
                )
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                documented.append((f"{where} body {media_type}", content["schema"], _examples(spec, content)))
            for status, response in operation["responses"].items():
                for media_type, content in response.get("content", {}).items():
                    if content["schema"].get("format") != "binary":
                        documented.append(
                            (f"{where} {status} {media_type}", content["schema"], _examples(spec, content))
                        )
    missing = [name for name, _, examples in documented if not examples]
    invalid = [
        f"{name}: {error.message}"
        for name, expected, examples in documented
        for example in examples
        for error in Draft202012Validator({**expected, "components": spec["components"]}).iter_errors(example)
    ]
    assert (missing, invalid) == ([], [])


def _examples(spec: dict[str, Any], content: dict[str, Any]) -> list[Any]:
    """A media type's examples: its own, else its schema's."""
    if "example" in content:
        return [content["example"]]
    if "examples" in content:
        return [_resolve(spec, example)["value"] for example in content["examples"].values()]
    return list(_resolve(spec, content["schema"]).get("examples", []))


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """What a local `$ref` points at (the node itself if it is none)."""
    if "$ref" in node:
        for key in node["$ref"].removeprefix("#/").split("/"):
            spec = spec[key]
        return spec
    return node


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None)
@pytest.mark.usefixtures("node_id_for_schemathesis")
def test_every_documented_route_answers_as_documented(case: Case) -> None:
    case.call_and_validate(checks=CHECKS)
