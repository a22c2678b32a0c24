"""The worst pictures the default limit lets through, each decoded in a fresh process whose peak
memory is measured (seconds of work, so not among the unit tests)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.pictures import LIMIT, WORST_SIDE, write_worst_png

WORST_WEBP = """
import sys
import numpy as np
from PIL import Image

side = int(sys.argv[2])
x = np.arange(side)
y = x[:, None]
pixels = np.empty((side, side, 4), np.uint8)
pixels[..., 0], pixels[..., 1], pixels[..., 2], pixels[..., 3] = x % 64 * 4, y % 64 * 4, 160, (x + y) % 64 * 4
Image.fromarray(pixels).save(sys.argv[1], lossless=True, method=0)
"""


@pytest.fixture(scope="module")
def worst_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("worst")
    write_worst_png(folder / "square.png")
    # Too narrow to reduce for a model (399 < 2 x 2 x 256): it stays full size.
    write_worst_png(folder / "panorama.png", 100_250, 399)
    # Written in another process: the picture would otherwise sit in the test process's memory.
    subprocess.run([sys.executable, "-c", WORST_WEBP, str(folder / "square.webp"), str(WORST_SIDE)], check=True)
    return {path.name: path for path in folder.iterdir()}


PEAK_OF_A_DECODE = """
import json, sys
from pathlib import Path
from imgclf.images.decoding import open_rgb

def peak_mib():
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024

before = peak_mib()
image = open_rgb(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) or None)
print(json.dumps({"added_mib": peak_mib() - before, "size": image.size, "mode": image.mode}))
"""


@pytest.mark.parametrize(
    ("name", "draft_size", "pictures", "size"),
    [
        # As a worker decodes (`draft_size` is the model's resize): reduced 12 times, in bands.
        ("square.png", 256, 1, (527, 527)),
        # Without `draft_size`: the full-size RGB result is a second picture.
        ("square.png", 0, 2, (WORST_SIDE, WORST_SIDE)),
        ("panorama.png", 256, 2, (100_250, 399)),
        # Pillow's WebP decoder holds two canvases of its own and a copy of the frame while it loads.
        ("square.webp", 256, 4, (527, 527)),
    ],
)
def test_the_worst_allowed_images_decode_within_a_memory_bound(
    worst_images: dict[str, Path], name: str, draft_size: int, pictures: int, size: tuple[int, int]
) -> None:
    # A fresh process, so that its peak memory is this decode's alone. The bound: so many decoded
    # pictures (4 bytes a pixel, about 153 MiB at the default limit) plus 64 MiB. Before the
    # conversions ran in bands, on reduced pictures, the PNGs took 917 MiB and the WebP 1,222.
    result = subprocess.run(
        [sys.executable, "-c", PEAK_OF_A_DECODE, str(worst_images[name]), str(LIMIT), str(draft_size)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    measured = json.loads(result.stdout)
    assert measured["size"] == list(size) and measured["mode"] == "RGB"
    with Image.open(worst_images[name]) as image:
        pixels = image.width * image.height
    assert LIMIT - 100_000 < pixels <= LIMIT
    bound = pictures * pixels * 4 / 2**20 + 64
    print(f"decoding {name} (draft {draft_size}): {measured['added_mib']:.0f} MiB, bound {bound:.0f} MiB")
    assert measured["added_mib"] < bound
