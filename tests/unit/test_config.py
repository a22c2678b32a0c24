from pathlib import Path

import pytest
from pydantic import ValidationError

from imgclf.config import MissingRedisUrl, Settings
from imgclf.models.registry import MODEL_IDS


def test_defaults_offer_every_model_and_derive_folders_from_data_dir() -> None:
    settings = Settings(data_dir=Path("/srv/imgclf"))
    assert settings.models == list(MODEL_IDS)
    assert settings.image_dir == Path("/srv/imgclf/images")
    assert settings.model_dir == Path("/srv/imgclf/models")
    assert settings.redis_url is None


def test_environment_variables_configure_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGCLF_MODELS", "efficientnet_lite0, resnet18")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/2")
    monkeypatch.setenv("IMGCLF_PORT", "9000")
    settings = Settings()
    assert settings.models == ["efficientnet_lite0", "resnet18"]
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.port == 9000


def test_prefixed_redis_url_wins_over_the_plain_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://plain:6379/0")
    monkeypatch.setenv("IMGCLF_REDIS_URL", "redis://prefixed:6379/0")
    assert Settings().redis_url == "redis://prefixed:6379/0"


def test_an_unknown_model_id_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="known: efficientnet_lite0"):
        Settings(models=["efficientnet_lite0", "gpt"])


def test_threads_are_shared_among_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert Settings().workers == 4  # one per CPU, at most 4
    assert Settings().threads_per_worker() == 2
    assert Settings(workers=2).threads_per_worker() == 4
    assert Settings(workers=16).threads_per_worker() == 1
    assert Settings(workers=2, torch_threads=3).threads_per_worker() == 3


def test_the_redis_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text("s3cret/with:odd@chars\n")
    settings = Settings(redis_url="redis://redis:6379/0", redis_password_file=secret)
    assert settings.required_redis_url() == "redis://:s3cret%2Fwith%3Aodd%40chars@redis:6379/0"
    # A password written in the URL itself wins; a user name is kept.
    assert Settings(redis_url="redis://:own@redis:6379/0", redis_password_file=secret).required_redis_url() == (
        "redis://:own@redis:6379/0"
    )
    assert (
        Settings(redis_url="redis://app@redis/1", redis_password_file=secret)
        .required_redis_url()
        .startswith("redis://app:s3cret")
    )


@pytest.mark.parametrize("content", [None, "", "\nsecond line"])
def test_a_missing_or_empty_password_file_stops_the_process_with_a_reason(tmp_path: Path, content: str | None) -> None:
    secret = tmp_path / "redis-password"
    if content is not None:
        secret.write_text(content)
    settings = Settings(redis_url="redis://redis:6379/0", redis_password_file=secret)
    with pytest.raises(MissingRedisUrl, match="Redis password file"):
        settings.required_redis_url()
