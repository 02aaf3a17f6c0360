"""The package's layers: imports point one way, from the command line down to the inputs.

docs/architecture.md draws the layers; this test holds the code to it, so that a new
method is one folder's change and `certify` stays independent of the code that solved.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "gcm_fund"

# Lowest first: a module may import from its own layer's package and from layers below.
LAYERS: list[set[str]] = [
    {"errors"},
    {"writing"},
    {"inputs"},
    {"model"},
    {"solvers"},
    {"methods"},
    {"outputs"},
    {"engine"},
    {"analyses", "audit"},
    {"verification"},
    {"api"},
    {"cli"},
    {"__main__", "__init__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# certify restates the rules from the run folder's files: it never reads the solving code.
AUDIT_NEVER = {"model", "solvers", "methods", "engine", "analyses", "api", "cli"}
AUDIT_MAY = {"model.spec"}


def _part(module: str) -> str:
    """The layer's name of a module path inside gcm_fund (`inputs.load` -> `inputs`)."""
    return module.split(".")[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every gcm_fund module a file imports, with its line, as a path inside the package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gcm_fund":
                found += [(node.lineno, alias.name) for alias in node.names]
            elif node.module.startswith("gcm_fund."):
                found.append((node.lineno, node.module.removeprefix("gcm_fund.")))
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: a relative import; write gcm_fund.…")
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.removeprefix("gcm_fund."))
                      for a in node.names if a.name.startswith("gcm_fund.")]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path: Path) -> None:
    here = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    layer = _part(here)
    assert layer in RANK, f"{here}: in no layer of LAYERS"
    wrong = []
    for line, module in _imports(path):
        other = _part(module)
        if other == "__version__" or other == layer:
            continue
        assert other in RANK, f"{here}:{line}: imports {module}, in no layer"
        if RANK[other] >= RANK[layer]:
            wrong.append(f"line {line}: {module} is not below {layer}")
        if layer == "audit" and other in AUDIT_NEVER and module not in AUDIT_MAY:
            wrong.append(f"line {line}: certify must not read {module}")
    assert not wrong, f"{here}: " + "; ".join(wrong)
