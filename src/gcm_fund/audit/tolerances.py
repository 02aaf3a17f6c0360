"""The tolerances `certify` and `explain` hold a run folder to.

docs/outputs.md's rule tolerance and docs/outputs.md's duality gap come from `gcm_fund.model.spec`,
shared with the code that makes a run; the rest are how closely certify reads what a run wrote.
"""

from gcm_fund.model.spec import (
    GAP_RELATIVE,
    MAX_VALUE_PRECISION,
    RELATIVE_ALLOWANCE,
    RELATIVE_FLOOR_USD,
    ROW_ALLOWANCE_USD,
    rule_tolerance_usd,
)

# Dual feasibility: a reduced cost or a wrong-signed dual is noise up to 1e-7 of the
# objective's cost scale (max |w| per USD in stage 2; one floor unit per USD of the floor
# set's fundable need in stage 1). CBC writes 8 significant digits, HiGHS 12.
DUAL_RELATIVE = 1e-7
# Floor levels are shares; a solver that writes 8 significant digits moves them ~1e-9.
Z_TOLERANCE = 1e-8
# A figure written to the cent from the written amounts is off by at most half a cent (and
# float noise) from the same figure recomputed: anything more means the files disagree.
SAME_CENT = 0.0051
# docs/model.md: per-gap amounts within USD 0.01 + 1e-6 of U of the exact leximin allocation,
# plus half a cent for each written (rounded) row.
GAP_USD, GAP_RELATIVE_U, ROW_CENT = 0.01, 1e-6, 0.005
# Relative noise allowed for in the bound that holds a stopped gap (its duals and level
# are written with 12 significant digits): small enough that a gap 1e-9 the size of the
# others sharing its dual is still proved held within USD 0.01, large enough that a
# forged dual hidden in the bound's rounding still shows.
LEVEL_DIGITS = 1e-15

__all__ = [
    "DUAL_RELATIVE", "GAP_RELATIVE", "GAP_RELATIVE_U", "GAP_USD", "LEVEL_DIGITS",
    "MAX_VALUE_PRECISION",
    "RELATIVE_ALLOWANCE", "RELATIVE_FLOOR_USD", "ROW_ALLOWANCE_USD", "ROW_CENT", "SAME_CENT",
    "Z_TOLERANCE", "rule_tolerance_usd",
]
