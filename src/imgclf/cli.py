"""The `imgclf` command: serve | web | worker | prepare | bench | healthcheck | classify."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgclf.config import Settings
from imgclf.ops.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imgclf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run Redis (embedded unless REDIS_URL is set), workers and web")
    serve.add_argument("--workers", type=int, help="worker processes (IMGCLF_WORKERS; default one per CPU, at most 4)")
    _add_bind_options(serve)

    web = commands.add_parser("web", help="run only the web server (needs IMGCLF_REDIS_URL)")
    _add_bind_options(web)

    commands.add_parser("worker", help="run one worker (needs IMGCLF_REDIS_URL)")

    prepare = commands.add_parser("prepare", help="fill the image catalogue and model cache")
    prepare.add_argument(
        "--download",
        action="store_true",
        help="also download torchvision weights and the ImageNet sample images (needs internet)",
    )

    bench = commands.add_parser("bench", help="measure model, pipeline, queue and end-to-end speed")
    bench.add_argument("--smoke", action="store_true", help="a seconds-long run that checks the harness")
    bench.add_argument("--out", type=Path, default=Path("docs"), help="folder for benchmarks.md/.json/.png")
    bench.add_argument("--repeats", type=int, help="repeats of every measurement (median reported)")
    bench.add_argument("--render", type=Path, metavar="JSON", help="only rewrite the report from a run's raw JSON")

    healthcheck = commands.add_parser("healthcheck", help="exit 0 if this container's process is healthy")
    healthcheck.add_argument(
        "--worker", action="store_true", help="check the worker on this host instead of the web server"
    )

    classify = commands.add_parser("classify", help="classify one image file here, without the queue")
    classify.add_argument("model_id")
    classify.add_argument("image", type=Path)

    args = parser.parse_args(argv)
    overrides = {key: value for key in ("workers", "host", "port") if (value := getattr(args, key, None)) is not None}
    try:
        settings = Settings(**overrides)
    except ValueError as exc:
        print(f"imgclf: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    return int(_run(args.command, args, settings) or 0)


def _add_bind_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to bind (IMGCLF_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (IMGCLF_PORT, default 8000)")


def _run(command: str, args: argparse.Namespace, settings: Settings) -> int | None:
    if command == "serve":
        from imgclf.ops.supervisor import serve

        return serve(settings)
    if command == "web":
        from imgclf.web.server import run

        if not settings.redis_url:
            print("imgclf web needs IMGCLF_REDIS_URL (or run `imgclf serve`).", file=sys.stderr)
            return 2
        run(settings)
        return 0
    if command == "worker":
        from imgclf.worker.process import run_worker

        run_worker(settings)
        return 0
    if command == "prepare":
        from imgclf.ops.prepare import prepare

        prepare(settings, download=args.download)
        return 0
    if command == "bench":
        import json

        from imgclf.bench.report import write_report
        from imgclf.bench.runner import BenchOptions, run_benchmark

        if args.render:
            for path in write_report(json.loads(args.render.read_text()), args.out):
                print(f"wrote {path}")
            return 0
        options = BenchOptions.smoke_test(args.out) if args.smoke else BenchOptions(out_dir=args.out)
        if args.repeats:
            options.repeats = args.repeats
        options.model_dir = settings.models_path
        results = run_benchmark(options)
        for path in write_report(results, args.out):
            print(f"wrote {path}")
        return 0
    if command == "healthcheck":
        from imgclf.ops.healthcheck import check_web, check_worker

        problem = check_worker(settings) if args.worker else check_web(settings)
        if problem:
            print(f"unhealthy: {problem}", file=sys.stderr)
            return 1
        return 0
    if command == "classify":
        from imgclf.errors import ClassificationError
        from imgclf.images.decoding import open_rgb
        from imgclf.models.loading import load_classifier
        from imgclf.models.registry import MODELS

        spec = MODELS.get(args.model_id)
        reason = spec.unavailable_reason(settings.models_path) if spec else "unknown model"
        if spec is None or reason:
            print(f"imgclf: cannot use {args.model_id}: {reason}", file=sys.stderr)
            return 2
        try:
            image = open_rgb(args.image, settings.max_image_pixels)
        except ClassificationError as exc:
            print(f"imgclf: {exc.message}", file=sys.stderr)
            return 2
        for label, percent in load_classifier(spec, settings.models_path).classify([image])[0]:
            print(f"{percent:6.2f} %  {label}")
        return 0
    raise AssertionError(command)
