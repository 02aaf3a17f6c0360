"""`certify`: a run folder proved correct and optimal from its files alone.

`certify` proves an allocation correct and optimal without a solver and without the
model-building code of `model.py`: it rebuilds the rules of docs/model.md from the copied
inputs and policy with its own (deliberately separate) code, then checks

- the copies are the files the run was made from (sha256 against manifest.json), and every
  file of the folder is one the run wrote, unchanged (the manifest's `files`);
- no number anywhere in the folder is non-finite or absurd;
- primal feasibility: every allocation row is eligible and every rule holds on the written
  amounts within docs/outputs.md's tolerance, the floor included;
- constraints.csv names every rule row and reports its lhs as the allocation gives it;
- dual feasibility of the final stage: the `dual` column (d objective / d rhs) has the sign
  of its row and leaves no eligible triple with a positive reduced cost;
- zero duality gap: sum w x of the written allocation equals the dual objective;
- when stage 1 ran: its duals bound the floor from above by the recorded floor z*, and the
  allocation reaches z* - tolerance from below, which proves z*;
- every derived table and figure (coverage.csv, sources_summary.csv, the manifest's
  totals, run id and policy name) is what the allocation and the inputs give;
- with contributions.csv (docs/contributions.md), every `B_f` is counted again from the copied
  contributions and rates, and resources.csv and the manifest's `pledges` agree.

The checks live by subject: `provenance`, `optimality`, `derived`; each takes the shared
`checks.Certifier`. A check that meets a damaged file fails, naming it: certify never
crashes on a folder, it says "not certified".

Weak duality is all it takes: a dual-feasible y bounds every feasible allocation's
objective by sum(rhs * y) plus the floor variable's bound term, so an allocation that meets
the bound is optimal, whatever solver produced either.
"""

from __future__ import annotations

from pathlib import Path

from gcm_fund.audit import derived, optimality, provenance
from gcm_fund.audit.checks import Certificate, Certifier, Check
from gcm_fund.audit.cycles import restate, with_cycle
from gcm_fund.audit.folder import open_run
from gcm_fund.audit.levels import certify_levels
from gcm_fund.audit.performance import check_performance
from gcm_fund.audit.pledges import check_resources, counted_pledges
from gcm_fund.audit.programmes import certify_programmes
from gcm_fund.audit.rules import rebuild
from gcm_fund.errors import InputError
from gcm_fund.inputs.load import load_inputs
from gcm_fund.inputs.policy_file import load_policy
from gcm_fund.inputs.programmes import load_programmes


def load_rules(c: Certifier) -> bool:
    """The rules of docs/model.md rebuilt from the copied inputs and policy; False when
    unreadable."""
    try:
        data = load_inputs(c.run.inputs)
        policy = load_policy(c.run.policy, targets=set(data.gaps["target"])).policy
        if policy.allocation.method == "programmes":
            data = load_programmes(c.run.inputs, data)
    except InputError as exc:
        c.add(Check("inputs", False, "the copied inputs or policy cannot be read", "",
                    [str(p) for p in exc.problems]))
        return False
    except RecursionError:
        c.add(Check("inputs", False, "policy.toml: nested too deeply to be a policy"))
        return False
    try:
        data = counted_pledges(data, policy)
    except ValueError as exc:
        c.add(Check("inputs", False, "the pledges cannot be counted from the copied "
                    "contributions.csv and fx.csv", "", [str(exc)]))
        return False
    try:
        cycle = restate(c.run.inputs, data, policy)
        data = with_cycle(data, c.run.inputs, cycle)
    except (ValueError, InputError) as exc:
        found = exc.problems if isinstance(exc, InputError) else [exc]
        c.add(Check("inputs", False, "the copied history.csv cannot be read with the copied "
                    "inputs and policy", "", [str(p) for p in found]))
        return False
    c.rules_ = rebuild(data, policy, cycle)
    return True


def certify(folder: Path | str) -> Certificate:
    """Every check of `gcm-fund certify` on one run folder (no solver involved).

    Raises `NotARunFolder` when the folder has no run manifest; any other damage is a
    failed check.
    """
    run = open_run(folder)
    run.cache = {}  # the checks only read the tables
    c = Certifier(run)
    c.step("provenance", provenance.check_hashes)
    c.step("files", provenance.check_files)
    c.step("manifest", provenance.check_manifest)
    if not c.step("inputs", load_rules):
        return c.cert
    c.step("numbers", provenance.check_numbers)
    if not c.step("allocations", optimality.check_allocations):
        return c.cert
    c.step("rules", optimality.check_rules)
    z_final = c.step("rule floor", optimality.check_floor)
    if c.rules.policy.allocation.method == "programmes":
        c.step("programmes", certify_programmes)
    elif c.rules.policy.allocation.method == "levels":
        c.step("levels", certify_levels, z_final)
        c.step("constraints.csv", optimality.levels_constraints, z_final)
    else:
        c.step("stage 2", optimality.stage2, z_final)
    if c.rules.policy.allocation.method != "programmes":  # docs/programmes.md has no floor
        c.step("stage 1", optimality.stage1, z_final)
    c.step("coverage.csv", derived.check_coverage)
    if c.rules.policy.allocation.method == "levels":
        c.step("level columns", derived.check_level_columns)
    c.step("sources_summary.csv", derived.check_sources)
    c.step("states_summary.csv", derived.check_states)
    c.step("resources.csv", check_resources)
    c.step("performance.csv", check_performance)
    c.step("manifest figures", derived.check_manifest_figures)
    if c.cert.ok:  # the page is rendered from the files: only from files certified so far
        c.step("report.html", derived.check_report)
    return c.cert
