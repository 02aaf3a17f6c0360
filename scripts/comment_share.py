"""The share of comment lines in the package's source: `#` comments and docstrings.

    python scripts/comment_share.py [FOLDER] [--by-module] [--only GLOB]...

A line counts as a comment when it holds a `#` comment (whole-line or trailing) or lies in
a docstring (a string that is a module's, class's or function's first statement); blank
lines are left out of both counts. Prints the share over FOLDER (default src/gcm_fund) and,
with --by-module, each module's.
"""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def comment_lines(source: str) -> tuple[int, int]:
    """(lines holding a comment or docstring, non-blank lines) of a module's source."""
    lines = source.splitlines()
    counted: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            counted.add(token.start[0])
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                first, last = body[0].lineno, body[0].end_lineno or body[0].lineno
                counted.update(range(first, last + 1))
    non_blank = {i + 1 for i, line in enumerate(lines) if line.strip()}
    return len(counted & non_blank), len(non_blank)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=ROOT / "src" / "gcm_fund")
    parser.add_argument("--by-module", action="store_true")
    parser.add_argument("--only", action="append", default=[],
                        help="a glob of modules under FOLDER to count (repeatable)")
    args = parser.parse_args()
    paths = sorted({p for pattern in args.only or ["**/*.py"]
                    for p in args.folder.glob(pattern)})
    total_comment = total = 0
    for path in paths:
        comment, lines = comment_lines(path.read_text(encoding="utf-8"))
        total_comment, total = total_comment + comment, total + lines
        if args.by_module:
            print(f"{path.relative_to(args.folder)}: {comment}/{lines} "
                  f"({100 * comment / max(lines, 1):.0f} %)")
    print(f"{len(paths)} modules: {total_comment:,} of {total:,} non-blank lines are comments "
          f"or docstrings ({100 * total_comment / max(total, 1):.1f} %)")


if __name__ == "__main__":
    main()
