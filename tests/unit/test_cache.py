from pathlib import Path

from imgclf.images.adjustments import NONE, Adjustments
from imgclf.images.digests import FileDigests
from imgclf.jobs.cache import cache_key


def test_digest_is_the_sha256_of_the_bytes_and_follows_changes(tmp_path: Path) -> None:
    digests = FileDigests()
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"abc")
    assert digests.of(photo) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    photo.write_bytes(b"abcd")
    assert digests.of(photo) == "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"


def test_a_digest_is_remembered_until_the_file_changes(tmp_path: Path) -> None:
    digests = FileDigests()
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"abc")
    assert not digests.remembers(photo)
    digests.of(photo)
    assert digests.remembers(photo)
    photo.write_bytes(b"abcd")  # another size: read again
    assert not digests.remembers(photo)


def test_each_owner_has_its_own_memo(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"abc")
    FileDigests().of(photo)
    assert FileDigests()._known == {}  # no state shared through the module


def test_the_key_names_model_weights_version_and_bytes() -> None:
    key = cache_key("efficientnet_lite0", "f" * 64)
    assert key == "imgclf:cache:v3:efficientnet_lite0:efficientnet-lite0-57934424.pth:" + "f" * 64
    assert cache_key("efficientnet_lite1", "f" * 64) != key


def test_adjustments_get_entries_of_their_own_and_none_is_the_plain_key() -> None:
    plain = cache_key("efficientnet_lite0", "f" * 64)
    assert cache_key("efficientnet_lite0", "f" * 64, NONE) == plain
    brighter = cache_key("efficientnet_lite0", "f" * 64, Adjustments(brightness=1.2))
    turned = cache_key("efficientnet_lite0", "f" * 64, Adjustments(rotate=90))
    assert len({plain, brighter, turned}) == 3
    assert cache_key("efficientnet_lite0", "f" * 64, Adjustments(brightness=1.2)) == brighter
