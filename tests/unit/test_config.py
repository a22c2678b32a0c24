from pathlib import Path

import pytest
from pydantic import ValidationError

from imgclf.config import Settings
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
