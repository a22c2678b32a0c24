"""The `imgclf` command: serve | web | worker | prepare | bench | healthcheck | classify.

One function per subcommand, (arguments, settings) -> exit status. Each imports what it runs
only when called, so that `imgclf web` and `imgclf healthcheck` never load torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from imgclf.config import MissingRedisUrl, Settings
from imgclf.ops.logs import configure_logging

Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {key: value for key in ("workers", "host", "port") if (value := getattr(args, key, None)) is not None}
    try:
        settings = Settings(**overrides)
    except ValueError as exc:
        print(f"imgclf: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        return COMMANDS[args.command](args, settings)
    except MissingRedisUrl as exc:  # `web` and `worker` cannot start without a Redis
        print(f"imgclf {args.command}: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every subcommand and option, each with its help.

    It is long because it is one table read top to bottom, a few lines per option; split by
    subcommand it would only add names to jump between."""
    parser = argparse.ArgumentParser(
        prog="imgclf",
        description=__doc__.splitlines()[0],
        epilog="Settings come from IMGCLF_* environment variables (README.md, Configuration). "
        "`imgclf COMMAND --help` tells what a command does and needs.",
    )
    parser.add_argument(
        "--version", action="version", version=f"imgclf {version('imgclf')}", help="print the version and exit"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to run")

    serve = _add_command(
        commands,
        "serve",
        "run Redis (embedded unless IMGCLF_REDIS_URL is set), workers and the web server",
        """
        Run the whole service from one command: Redis, the workers and the web server, as
        child processes that are started again when they die. Without IMGCLF_REDIS_URL (or
        REDIS_URL), Redis is a redis-server of its own on a unix socket in
        $IMGCLF_DATA_DIR/redis; with it, that server is used. Adds the sample photos when the
        catalogue is empty. Ctrl+C (or SIGTERM) stops everything; exits 1 if a process keeps
        failing to start.

        examples:
          imgclf serve
          imgclf serve --workers 2 --host 0.0.0.0 --port 8080
        """,
    )
    serve.add_argument(
        "--workers", type=int, metavar="N", help="worker processes (IMGCLF_WORKERS; default one per CPU, at most 4)"
    )
    _add_bind_options(serve)

    web = _add_command(
        commands,
        "web",
        "run only the web server (needs IMGCLF_REDIS_URL)",
        """
        Run the web server alone (the pages, /api/v1 and the lesson's routes, under uvicorn).
        It queues jobs in Redis for workers started elsewhere (`imgclf worker`) and never
        loads a model. Needs IMGCLF_REDIS_URL; exits 2 without it.

        example:
          IMGCLF_REDIS_URL=redis://localhost:6379/0 imgclf web --host 0.0.0.0
        """,
    )
    _add_bind_options(web)

    _add_command(
        commands,
        "worker",
        "run one worker (needs IMGCLF_REDIS_URL)",
        """
        Run one worker: load every model of IMGCLF_MODELS whose weights are present, on the
        runtime IMGCLF_RUNTIME picks, then classify jobs from the queue until stopped (SIGINT
        or SIGTERM: the current job finishes first). Needs IMGCLF_REDIS_URL; exits 2 without
        it, and waits and reconnects when Redis goes away. Start as many as needed, on any
        machine that reaches the Redis.

        example:
          IMGCLF_REDIS_URL=redis://localhost:6379/0 imgclf worker
        """,
    )

    prepare = _add_command(
        commands,
        "prepare",
        "fill the image catalogue and the model cache before the service starts",
        """
        Write the offline sample photos into the image catalogue (IMGCLF_IMAGE_DIR) and, unless
        IMGCLF_RUNTIME=torch, export the available models to ONNX into the model cache
        (IMGCLF_MODEL_DIR), for workers that cannot write it.

        --download also fetches torchvision's weights for the models of IMGCLF_MODELS (SHA-256
        checked; from IMGCLF_WEIGHTS_MIRROR if set) and the ImageNet sample images
        (IMGCLF_IMAGENET_SAMPLES_URL). Restart running workers afterwards: they load the
        models when they start.

        examples:
          imgclf prepare
          imgclf prepare --download
        """,
    )
    prepare.add_argument(
        "--download",
        action="store_true",
        help="also download torchvision weights and the ImageNet sample images (needs internet)",
    )

    bench = _add_command(
        commands,
        "bench",
        "measure model, pipeline, ceiling, queue, end-to-end and a synchronous server; write the report",
        """
        Measure, on this machine and with the worker's own pipeline: forward passes per runtime
        and batch size, the pipeline alone, the pipeline ceiling (N processes), jobs/s through
        the queue with 1 and N workers, end to end over HTTP with the default setup against a
        synchronous reference server (N processes classifying inside the request), with the CPU
        each spends per classification, the lesson's design, and memory. It starts
        its own Redis, workers and web server in a temporary folder (IMGCLF_REDIS_URL is not
        used), then writes benchmarks.md, benchmarks.json and benchmarks.png into --out. A full
        run takes minutes.

        examples:
          imgclf bench --smoke --out /tmp/bench       # checks the harness; not for numbers
          imgclf bench                                # rewrites docs/benchmarks.*
          imgclf bench --render docs/benchmarks.json  # the report again, nothing measured
        """,
    )
    bench.add_argument(
        "--smoke", action="store_true", help="a short run (one model, one repeat) that checks the harness"
    )
    bench.add_argument(
        "--out",
        type=Path,
        default=Path("docs"),
        metavar="DIR",
        help="folder for benchmarks.md/.json/.png (default docs)",
    )
    bench.add_argument(
        "--repeats",
        type=int,
        metavar="N",
        help="repeats of every measurement, median reported (default 3; 1 with --smoke)",
    )
    bench.add_argument(
        "--cores",
        type=int,
        metavar="N",
        help="processes of the pipeline ceiling and of the synchronous reference (default: this machine's CPUs)",
    )
    bench.add_argument("--render", type=Path, metavar="JSON", help="only rewrite the report from a run's raw JSON")

    healthcheck = _add_command(
        commands,
        "healthcheck",
        "exit 0 if this host's web server (or, with --worker, a worker) is healthy",
        """
        For container health checks. Exit 0 if the web server on this host answers
        http://127.0.0.1:$IMGCLF_PORT/healthz with 200 within 3 s; otherwise print why and exit
        1. With --worker: exit 0 if a worker of this host (by host name) is ready in the Redis
        of IMGCLF_REDIS_URL (models loaded, heartbeat fresh).

        examples:
          imgclf healthcheck
          imgclf healthcheck --worker
        """,
    )
    healthcheck.add_argument(
        "--worker", action="store_true", help="check the worker on this host instead of the web server"
    )

    classify = _add_command(
        commands,
        "classify",
        "classify image files through a running service (--url), or one here as a worker does",
        """
        With --url (or IMGCLF_URL): send each FILE to that service's API, wait for the jobs
        and print their top 5; exit 1 if any failed or was refused. Without: classify one FILE
        in this process, with the model loaded here (IMGCLF_MODEL_DIR, IMGCLF_RUNTIME), without
        the queue.

        examples:
          imgclf classify efficientnet_lite0 my-photo.jpg
          imgclf classify --url http://127.0.0.1:8000 efficientnet_lite0 a.jpg b.png
        """,
    )
    classify.add_argument("model_id", metavar="MODEL", help="model id, e.g. efficientnet_lite0")
    classify.add_argument(
        "images", metavar="FILE", type=Path, nargs="+", help="image file to classify (several with --url)"
    )
    classify.add_argument(
        "--url",
        default=os.environ.get("IMGCLF_URL") or None,
        help="base URL of a running service, e.g. http://127.0.0.1:8000 (IMGCLF_URL); unset: classify here",
    )
    classify.add_argument("--json", action="store_true", help="print the job resources as a JSON array (needs --url)")
    classify.add_argument(
        "--timeout",
        type=float,
        default=300,
        metavar="SECONDS",
        help="with --url: give up waiting for the jobs after this long (default 300; they go on on the service)",
    )
    return parser


def _add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str, description: str
) -> argparse.ArgumentParser:
    # Raw: the descriptions are wrapped by hand, so that their examples keep their lines.
    return commands.add_parser(
        name,
        help=help,
        description=textwrap.dedent(description).strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_bind_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to bind (IMGCLF_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (IMGCLF_PORT, default 8000)")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from imgclf.ops.supervisor import serve

    return serve(settings)


def _web(args: argparse.Namespace, settings: Settings) -> int:
    from imgclf.web.server import run

    run(settings)
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from imgclf.worker.process import run_worker

    run_worker(settings)
    return 0


def _prepare(args: argparse.Namespace, settings: Settings) -> int:
    from imgclf.ops.prepare import prepare

    prepare(settings, download=args.download)
    return 0


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from imgclf.bench.report import write_report
    from imgclf.bench.runner import BenchOptions, run_benchmark

    if args.render:
        results = json.loads(args.render.read_text())
    else:
        options = BenchOptions.smoke_test(args.out) if args.smoke else BenchOptions(out_dir=args.out)
        if args.repeats:
            options.repeats = args.repeats
        if args.cores:
            options.cores = args.cores
        options.model_dir = settings.model_dir
        results = run_benchmark(options)
    for path in write_report(results, args.out):
        print(f"wrote {path}")
    return 0


def _healthcheck(args: argparse.Namespace, settings: Settings) -> int:
    from imgclf.ops.healthcheck import check_web, check_worker

    problem = check_worker(settings) if args.worker else check_web(settings)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


def _classify(args: argparse.Namespace, settings: Settings) -> int:
    if args.url:
        return _classify_remote(args, settings)
    if len(args.images) > 1 or args.json:
        print("imgclf classify: several files and --json need --url (or IMGCLF_URL)", file=sys.stderr)
        return 2
    image = args.images[0]

    from imgclf.errors import InvalidImage
    from imgclf.models.pipeline import Pipeline
    from imgclf.models.registry import MODELS
    from imgclf.models.serving import ModelNotServable, load_for_serving

    spec = MODELS.get(args.model_id)
    reason = spec.unavailable_reason(settings.model_dir) if spec else "unknown model"
    if spec is None or reason:
        print(f"imgclf classify: cannot use {args.model_id}: {reason}", file=sys.stderr)
        return 2
    if not image.is_file():
        print(f"imgclf classify: no file {image}", file=sys.stderr)
        return 2
    # The model is loaded as a worker loads it (same runtime choice and parity check); this one
    # process is the only one classifying, so it takes every core unless told otherwise.
    threads = settings.torch_threads or os.cpu_count() or 1
    try:
        classifier, _ = load_for_serving(spec, settings.model_dir, settings.runtime, threads)
    except ModelNotServable as exc:
        print(f"imgclf classify: cannot use {args.model_id}: {exc}", file=sys.stderr)
        return 2
    try:
        outcome = Pipeline(classifier, settings.max_image_pixels).run(image)
    except InvalidImage as exc:
        print(f"imgclf classify: {exc.message}", file=sys.stderr)
        return 2
    for label, percent in outcome.top:
        print(f"{percent:6.2f} %  {label}")
    return 0


def _classify_remote(args: argparse.Namespace, settings: Settings) -> int:
    """`classify --url`: through the service's API; this process never loads a model (nor torch)."""
    import logging

    from imgclf.ops.remote import InvalidServiceUrl, ServiceUnreachable, classify_remote, render_json, render_table

    if settings.log_level.upper() != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # its line per request is noise to a CLI user
    try:
        outcomes = classify_remote(args.url, args.model_id, args.images, timeout=args.timeout)
    except InvalidServiceUrl as exc:
        print(f"imgclf classify: {exc}", file=sys.stderr)
        return 2
    except ServiceUnreachable as exc:
        print(f"imgclf classify: {exc}", file=sys.stderr)
        return 1
    print(render_json(outcomes) if args.json else render_table(outcomes))
    return 0 if all(outcome.succeeded for outcome in outcomes) else 1


COMMANDS: dict[str, Command] = {
    "serve": _serve,
    "web": _web,
    "worker": _worker,
    "prepare": _prepare,
    "bench": _bench,
    "healthcheck": _healthcheck,
    "classify": _classify,
}
"""Subcommand -> the function that runs it."""
