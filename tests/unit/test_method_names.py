"""The allocation method is asked what it needs, never compared by name.

`methods/strategy.py` maps a policy's `[allocation] method` to its strategy; below it
(inputs/, model/) the policy's own properties (`Allocation.fills_by_priority`,
`Allocation.reads_programmes`) name what a method needs, and the code that knows a run only
by its files (the audit, the page) reads `model.spec.METHOD_TRAITS`. A comparison such as
`policy.allocation.method == "levels"` elsewhere is a rule with a second owner, and a new
method would have to find it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from gcm_fund.inputs.policy import Allocation
from gcm_fund.inputs.schema import ALLOCATION_METHODS
from gcm_fund.methods.strategy import METHODS
from gcm_fund.model.spec import METHOD_TRAITS

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "gcm_fund"
# The owners of the method's name: the policy model's properties and the strategies
# (model/spec.py's METHOD_TRAITS keys its table by the name, and compares it nowhere).
OWNERS = {"inputs/policy.py", "methods/strategy.py"}


def _is_method_name(node: ast.expr) -> bool:
    """A string literal naming a method, or a tuple, list or set of them."""
    if isinstance(node, ast.Constant):
        return node.value in ALLOCATION_METHODS
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_method_name(e) for e in node.elts)
    return False


def method_name_comparisons(source: str) -> list[int]:
    """Lines of `source` comparing something called `method` with a method's name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        named = any(_is_method_name(o) for o in operands)
        if named and any("method" in ast.unparse(o) for o in operands
                         if not _is_method_name(o)):
            found.append(node.lineno)
    return found


def test_the_finder_sees_each_form_of_comparison() -> None:
    code = ('a = policy.allocation.method == "levels"\n'
            'b = "weighted" != method\n'
            'c = run.get("method", "weighted") in ("weighted", "programmes")\n'
            'd = key == "levels"\n'
            'e = policy.allocation.fills_by_priority\n')
    assert method_name_comparisons(code) == [1, 2, 3]


def test_no_module_outside_the_owners_compares_the_method_name() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name in OWNERS:
            continue
        offenders += [f"{name}:{line}"
                      for line in method_name_comparisons(path.read_text(encoding="utf-8"))]
    assert offenders == [], "ask the method (methods/strategy.py) or the policy's properties"


def test_each_need_belongs_to_its_method() -> None:
    assert [m for m in ALLOCATION_METHODS if Allocation(method=m).fills_by_priority] == [
        "levels"]
    assert [m for m in ALLOCATION_METHODS if Allocation(method=m).reads_programmes] == [
        "programmes"]


def test_the_strategies_and_the_traits_table_agree() -> None:
    # The solving side asks the strategy, the audit and the page the table: one answer each.
    assert set(METHODS) == set(METHOD_TRAITS) == set(ALLOCATION_METHODS)
    for name, method in METHODS.items():
        traits = METHOD_TRAITS[name]
        assert (method.has_levels, method.selects_programmes, method.has_marginal_value) == (
            traits.writes_levels, traits.selects_programmes, traits.has_marginal_value), name
        assert Allocation(method=name).fills_by_priority == traits.writes_levels, name
        assert Allocation(method=name).reads_programmes == traits.selects_programmes, name
    assert [m for m in ALLOCATION_METHODS if METHOD_TRAITS[m].has_weighted_objective] == [
        "weighted"]
    assert [m for m in ALLOCATION_METHODS if not METHOD_TRAITS[m].has_floor] == ["programmes"]
