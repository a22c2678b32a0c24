"""House rule (issue 11): no function over 60 lines unless its docstring says why, with the
words "long because". Counted from `def` to the last line (decorators, often OpenAPI metadata,
are not counted). Run by `make lint`; prints each offender and exits 1."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LIMIT = 60
REASON = "long because"


def offenders(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                docstring = " ".join((ast.get_docstring(node) or "").split())
                if lines > LIMIT and REASON not in docstring:
                    found.append(f"{path}:{node.lineno}: {node.name}: {lines} lines, no '{REASON}' in its docstring")
    return found


if __name__ == "__main__":
    problems = [line for folder in sys.argv[1:] or ["src"] for line in offenders(Path(folder))]
    print("\n".join(problems) or f"no function over {LIMIT} lines without a reason")
    sys.exit(1 if problems else 0)
