"""Check the size rules of the house: no module over 500 lines and no function over 80 lines,
outside tests and data. Prints every offender with its size; exits 1 if there is one.

    .venv/bin/python scripts/check_layout.py [--max-file 500] [--max-function 80]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "api", "wallets", "bench", "scripts")
SKIP_PARTS = {"migrations", "data", "node_modules", "__pycache__"}


def sources() -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not SKIP_PARTS.intersection(path.relative_to(ROOT).parts):
                found.append(path)
    return found


def offenders(path: Path, max_file: int, max_function: int) -> list[str]:
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(ROOT)
    found = []
    lines = text.count("\n") + 1
    if lines > max_file:
        found.append(f"{where}: {lines} lines (at most {max_file})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > max_function:
                found.append(f"{where}:{node.lineno}: function {node.name} is {length} lines (at most {max_function})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-file", type=int, default=500)
    parser.add_argument("--max-function", type=int, default=80)
    parser.add_argument("--report-only", action="store_true", help="list offenders but exit 0 (while rooms are split)")
    args = parser.parse_args()
    found = [line for path in sources() for line in offenders(path, args.max_file, args.max_function)]
    for line in found:
        print(line)
    print(f"check_layout: {len(found)} offender(s)", file=sys.stderr)
    return 1 if found and not args.report_only else 0


if __name__ == "__main__":
    sys.exit(main())
