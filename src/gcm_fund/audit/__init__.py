"""Checking a run folder from its files alone: certify, verify, explain and diff.

- `folder`: reading a run folder (manifest, tables), trusting nothing in it;
- `rules`: the rules of docs/model.md rebuilt from the copied inputs, without model.py;
- `certificate`: `certify`, which proves the allocation correct and optimal, through the
  checks of `provenance` (the files are the run's), `optimality` (rules and duals) and
  `derived` (the tables and figures derived from the allocation), each a function of the
  shared `checks.Certifier`; `tolerances` states what each is held to;
- `explanation`: `explain`, why a State got what it got;
- `comparison`: `diff`, what changed between two runs.

`verify`, which solves a run again, lives above this package (`gcm_fund.verification`):
nothing here calls the engine.
"""

from gcm_fund.audit.certificate import Certificate, Check, certify
from gcm_fund.audit.comparison import RunDiff, diff
from gcm_fund.audit.explanation import Explanation, GapLine, RuleLine, explain
from gcm_fund.audit.folder import NotARunFolder, RunFolder, open_run
from gcm_fund.audit.rules import Rules, rebuild, why_not_eligible

__all__ = [
    "Certificate", "Check", "Explanation", "GapLine", "NotARunFolder", "RuleLine", "RunDiff",
    "RunFolder", "Rules", "certify", "diff", "explain", "open_run", "rebuild",
    "why_not_eligible",
]
