"""The allocation method is asked what it needs, never compared by name.

`methods/strategy.py` maps a policy's `[allocation] method` to its strategy; below it
(inputs/, model/) the policy's own properties (`Allocation.fills_by_priority`,
`Allocation.reads_programmes`) name what a method needs. A comparison such as
`policy.allocation.method == "levels"` elsewhere is a rule with a second owner, and a new
method would have to find it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from gcm_fund.inputs.policy import Allocation
from gcm_fund.inputs.schema import ALLOCATION_METHODS

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "gcm_fund"
# The owners of the method's name: the policy model's properties and the strategies.
OWNERS = {"inputs/policy.py", "methods/strategy.py"}
# Modules above model/ that still compare the name: certify and explain (which may not
# import methods/) and the page read the method a run folder's files state; the sweep,
# compare, verify and the terminal read a result's. Each is to ask a strategy or a policy's
# property instead; none may be added.
NOT_YET = {"analyses/compare.py", "analyses/sweep.py", "analyses/sweep_files.py",
           "audit/certificate.py", "audit/derived.py", "audit/explanation.py",
           "audit/rules.py", "cli/terminal.py", "outputs/page.py", "verification.py"}


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
        if name in OWNERS or name in NOT_YET:
            continue
        offenders += [f"{name}:{line}"
                      for line in method_name_comparisons(path.read_text(encoding="utf-8"))]
    assert offenders == [], "ask the method (methods/strategy.py) or the policy's properties"


def test_modules_not_yet_moved_still_compare_it() -> None:
    # An entry of NOT_YET that no longer compares the name is to be removed from it.
    for name in sorted(NOT_YET):
        assert method_name_comparisons((PACKAGE / name).read_text(encoding="utf-8")), name


def test_each_need_belongs_to_its_method() -> None:
    assert [m for m in ALLOCATION_METHODS if Allocation(method=m).fills_by_priority] == [
        "levels"]
    assert [m for m in ALLOCATION_METHODS if Allocation(method=m).reads_programmes] == [
        "programmes"]
