"""`imgclf classify --url` as a user runs it: a subprocess against a real `imgclf web` and a real
worker, with files of the test's own (fresh bytes, so the result cache never answers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from imgclf.ops.embedded_redis import free_port
from tests.conftest import CATS

MODEL = "efficientnet_lite0"
NOT_AN_IMAGE = "The file is not an image the service accepts"


def fresh_cat(image_dir: Path, folder: Path) -> Path:
    """chelsea.jpg with unique trailing bytes: a photo the service has never classified."""
    path = folder / f"cat-{uuid.uuid4().hex[:8]}.jpg"
    path.write_bytes((image_dir / "chelsea.jpg").read_bytes() + uuid.uuid4().hex.encode())
    return path


def run_cli(*args: str | Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "IMGCLF_URL"}
    if url is not None:
        env["IMGCLF_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "imgclf", "classify", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_refused_file_fails_the_run_and_the_table_gives_the_servers_reason(
    live_server: str, image_dir: Path, tmp_path: Path
) -> None:
    cat = fresh_cat(image_dir, tmp_path)
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo, whatever its name says\n")

    run = run_cli("--url", live_server, MODEL, cat, notes)

    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    cat_block, notes_block = run.stdout.strip().split("\n\n")
    header, top1, *others = cat_block.splitlines()
    assert header == f"{cat}  succeeded"
    assert top1.split(" %  ")[1] in CATS
    assert len(others) == 4
    assert notes_block.startswith(f"{notes}  failed: {NOT_AN_IMAGE}")
    assert "415" in notes_block


def test_json_output_is_the_job_resources_with_the_file_names(
    live_server: str, image_dir: Path, tmp_path: Path
) -> None:
    cat = fresh_cat(image_dir, tmp_path)

    run = run_cli("--url", live_server, "--json", MODEL, cat)

    assert run.returncode == 0, run.stderr
    [job] = json.loads(run.stdout)
    assert job["file"] == str(cat)
    assert job["status"] == "succeeded"
    assert job["model"] == MODEL
    assert job["image"]["filename"] == cat.name
    assert len(job["result"]["top5"]) == 5
    assert job["result"]["top5"][0]["label"] in CATS


def test_imgclf_url_stands_for_url_and_all_succeeding_exits_0(
    live_server: str, image_dir: Path, tmp_path: Path
) -> None:
    cats = [fresh_cat(image_dir, tmp_path), fresh_cat(image_dir, tmp_path)]

    run = run_cli("--json", MODEL, *cats, url=live_server)

    assert run.returncode == 0, run.stderr
    jobs = json.loads(run.stdout)
    assert [job["file"] for job in jobs] == [str(cat) for cat in cats]
    assert {job["status"] for job in jobs} == {"succeeded"}


def test_a_file_over_the_upload_limit_is_that_files_failure(live_server: str, tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + bytes(11 * 1024 * 1024))

    run = run_cli("--url", live_server, MODEL, big)

    assert run.returncode == 1, run.stderr
    assert run.stdout.startswith(f"{big}  failed: The request body is larger than this route accepts")
    assert "(413 " in run.stdout


def test_an_unknown_model_is_each_files_failure_in_the_servers_words(
    live_server: str, image_dir: Path, tmp_path: Path
) -> None:
    run = run_cli("--url", live_server, "no_such_model", fresh_cat(image_dir, tmp_path))

    assert run.returncode == 1, run.stderr
    assert "failed: model:" in run.stdout
    assert "(422 Unprocessable Entity)" in run.stdout


def test_an_unreachable_service_is_one_line_and_a_failure(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"never sent")

    run = run_cli("--url", url, MODEL, photo)

    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.startswith(f"imgclf classify: cannot reach {url} (")
    assert "Connection refused" in run.stderr
    assert run.stderr.count("\n") == 1


def test_a_url_that_is_not_a_services_is_a_usage_error(tmp_path: Path) -> None:
    run = run_cli("--url", "127.0.0.1:8000", MODEL, tmp_path / "photo.jpg")

    assert run.returncode == 2
    assert run.stderr == (
        "imgclf classify: '127.0.0.1:8000' is not a service URL: give the service's address with http:// or "
        "https://, like http://127.0.0.1:8000\n"
    )
