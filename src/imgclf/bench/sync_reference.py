"""The synchronous reference: what the same cores serve without a queue.

A minimal FastAPI app, run by uvicorn with N worker processes, that classifies inside the
request with the worker's own `Pipeline` (same model, same runtime, one inference thread a
process, same decoding and preprocessing): `POST /classify {"image": "<catalogue id>"}` answers
the top 5. It is the benchmark's yardstick, not part of the service: no jobs, no cache, no
limits beyond the catalogue's. Run as `python -m imgclf.bench.sync_reference` (by `start`).

The route is `async` and runs the pipeline on the event loop on purpose: each process then
classifies one request at a time with its one inference thread, as a synchronous server's
worker does, instead of handing requests to a thread pool that would run several at once on
one core. Torch is imported by the worker processes only: uvicorn's supervisor, which starts
them one after the other, stays light.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from imgclf.config import Settings
from imgclf.errors import UnknownImage
from imgclf.images.catalogue import ImageCatalogue

if TYPE_CHECKING:
    from imgclf.models.pipeline import Pipeline

MODEL_VARIABLE = "IMGCLF_REFERENCE_MODEL"
RUNTIME_VARIABLE = "IMGCLF_REFERENCE_RUNTIME"
READY_VARIABLE = "IMGCLF_REFERENCE_READY_DIR"
"""Each worker process writes a file named after its pid here once its model is loaded."""

START_TIMEOUT = 300
"""Seconds the worker processes may take to load the model."""


class ClassifyRequest(BaseModel):
    image: str
    """A catalogue image id."""


def create_app() -> FastAPI:
    """The reference app of one worker process, configured from the environment."""
    settings = Settings()
    catalogue = ImageCatalogue(settings.image_dir)
    pipelines: list[Pipeline] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from imgclf.models.pipeline import Pipeline
        from imgclf.models.registry import MODELS
        from imgclf.models.serving import load_for_serving

        runtime = os.environ[RUNTIME_VARIABLE]
        spec = MODELS[os.environ[MODEL_VARIABLE]]
        classifier, report = load_for_serving(spec, settings.model_dir, runtime, 1)  # type: ignore[arg-type]
        if report.chosen != runtime:
            raise RuntimeError(f"{spec.id} on {runtime}: {report.rejected.get(runtime)}")
        pipelines.append(Pipeline(classifier, settings.max_image_pixels))
        (Path(os.environ[READY_VARIABLE]) / str(os.getpid())).touch()
        yield

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    @app.post("/classify")
    async def classify(request: ClassifyRequest) -> dict[str, list[tuple[str, float]]]:
        """Classify one catalogue photo; answer its top 5."""
        try:
            path = catalogue.path(request.image)
        except UnknownImage as exc:
            raise HTTPException(404, "unknown image") from exc
        return {"top": pipelines[0].run(path).top}

    return app


def start(
    settings: Settings, model_id: str, runtime: str, processes: int, port: int, ready_dir: Path
) -> subprocess.Popen[bytes]:
    """Start the reference with `processes` workers on `port`; return once every worker has loaded
    the model. Its output goes to `<ready_dir>.log`."""
    from imgclf.ops.processes import settings_env, stop

    ready_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **settings_env(settings),
        MODEL_VARIABLE: model_id,
        RUNTIME_VARIABLE: runtime,
        READY_VARIABLE: str(ready_dir),
    }
    command = [sys.executable, "-m", "imgclf.bench.sync_reference", str(processes), str(port)]
    log = ready_dir.parent / f"{ready_dir.name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while len(list(ready_dir.iterdir())) < processes:
            if process.poll() is not None:
                raise RuntimeError(f"the synchronous reference exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the synchronous reference did not load within {START_TIMEOUT} s")
            time.sleep(0.1)
    except BaseException:
        stop(process)
        raise
    return process


def main() -> None:
    """`python -m imgclf.bench.sync_reference PROCESSES PORT`: serve on 127.0.0.1."""
    import uvicorn

    processes, port = int(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(
        "imgclf.bench.sync_reference:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=processes,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
