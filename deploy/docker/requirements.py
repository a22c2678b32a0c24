"""Print the requirements of one container image (`web`, `worker` or `export`), from pyproject.toml.

    python requirements.py ROLE > requirements.txt

Each image installs the project's dependencies less what its processes never import, plus the
extras its role needs, as `[tool.imgclf.images]` in pyproject.toml says. Standard library only:
it runs in the image build, before anything is installed.
"""

import re
import sys
import tomllib


def requirements(pyproject: dict, role: str) -> list[str]:
    project = pyproject["project"]
    image = pyproject["tool"]["imgclf"]["images"][role]
    left_out = {name.lower() for name in image.get("leave-out", [])}
    lines = [
        line
        for line in project["dependencies"]
        if re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower() not in left_out
    ]
    for extra in image.get("extras", []):
        lines += project["optional-dependencies"][extra]
    return lines


if __name__ == "__main__":
    with open("pyproject.toml", "rb") as file:
        print("\n".join(requirements(tomllib.load(file), sys.argv[1])))
