"""The module map of CONTRIBUTING.md, made from the code: every module of ``alllib/``, its line count
and the first line of its docstring.

    python .ci/module_map.py            # print the table
    python .ci/module_map.py --write    # replace the table in CONTRIBUTING.md

``tests/test_house.py`` holds CONTRIBUTING.md to this table, so a change that adds, removes or
grows a module says so in the map.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "| module | lines | what it holds |\n|---|---|---|\n"


def module_map(root: Path = ROOT) -> str:
    """The table, one row per module, sorted by path."""
    rows = []
    for path in sorted((root / "alllib").rglob("*.py")):
        if path.name == "__main__.py":
            continue
        text = path.read_text()
        doc = (ast.get_docstring(ast.parse(text)) or "").strip().split("\n\n")[0].replace("\n", " ")
        rows.append(f"| `{path.relative_to(root)}` | {len(text.splitlines())} | {doc.replace('|', chr(92) + '|')} |")
    return HEADER + "\n".join(rows) + "\n"


def replace_map(text: str, table: str) -> str:
    """CONTRIBUTING.md's text with its module map replaced by ``table``."""
    return re.sub(r"\| module \| lines \| what it holds \|\n\|---\|---\|---\|\n(?:\|.*\|\n)*", table, text, count=1)


if __name__ == "__main__":
    table = module_map()
    if "--write" in sys.argv:
        target = ROOT / "CONTRIBUTING.md"
        target.write_text(replace_map(target.read_text(), table))
    else:
        print(table, end="")
