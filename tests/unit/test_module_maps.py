"""The maps a newcomer reads (each package's docstring, the README's module map) name every
module there is: a module added without a line in the map fails here."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "src" / "imgclf"
PACKAGES = sorted(init.parent for init in PACKAGE.glob("*/__init__.py"))


def modules(package: Path) -> list[str]:
    return sorted(path.name for path in package.glob("*.py") if path.name != "__init__.py")


@pytest.mark.parametrize("package", PACKAGES, ids=lambda package: package.name)
def test_a_package_docstring_names_each_of_its_modules(package: Path) -> None:
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    assert [name for name in modules(package) if name not in docstring] == []


def test_the_readme_module_map_names_each_folder_and_module() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\nsrc/imgclf/\n") :]
    section = section[: section.index("```")]
    missing = [f"{package.name}/" for package in PACKAGES if f"{package.name}/" not in section]
    for package in PACKAGES:
        named = section[section.index(f"{package.name}/") :]
        missing += [f"{package.name}/{name}" for name in modules(package) if name.removesuffix(".py") not in named]
    assert missing == []
