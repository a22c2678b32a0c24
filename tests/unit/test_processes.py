"""Stopping child processes: all at once, so stopping N takes as long as the slowest."""

import subprocess
import sys
from pathlib import Path

from imgclf.ops.processes import stop_all

# On SIGTERM, each child leaves a mark and exits only once every sibling has left its own: a
# stop that signals one child at a time can never see the first one exit, and has to kill it.
WAITS_FOR_SIBLINGS = """
import pathlib, signal, sys, time
folder, me, count = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def on_term(signum, frame):
    (folder / me).touch()
    while len(list(folder.iterdir())) < count:
        time.sleep(0.01)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
(folder.parent / f"ready-{me}").touch()
while True:
    time.sleep(1)
"""


def test_children_are_stopped_together_not_one_after_the_other(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    children = [
        subprocess.Popen([sys.executable, "-c", WAITS_FOR_SIBLINGS, str(marks), str(index), "3"]) for index in range(3)
    ]
    while len(list(tmp_path.glob("ready-*"))) < 3:  # every handler installed
        pass
    killed = stop_all(children, timeout=10)
    assert killed == []
    assert [child.returncode for child in children] == [0, 0, 0]
