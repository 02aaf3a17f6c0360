"""The tolerances `certify` and `explain` hold a run folder to (SPEC 5 and 7)."""

# SPEC 5: a rule holds within 0.01 USD per allocation row in it plus 1e-7 of
# max(|lhs|, |rhs|, 1e6).
ROW_ALLOWANCE_USD = 0.01
RELATIVE_ALLOWANCE = 1e-7
RELATIVE_FLOOR_USD = 1e6
# SPEC 7: the duality gap accepted is at most 1e-6 relative to the objective.
GAP_RELATIVE = 1e-6
# Dual feasibility: a reduced cost or a wrong-signed dual is noise up to 1e-7 of the
# objective's cost scale (max |w| per USD in stage 2; one floor unit per USD of the floor
# set's fundable need in stage 1). CBC writes 8 significant digits, HiGHS 12.
DUAL_RELATIVE = 1e-7
# Floor levels are shares; a solver that writes 8 significant digits moves them ~1e-9.
Z_TOLERANCE = 1e-8
# A figure written to the cent from the written amounts is off by at most half a cent (and
# float noise) from the same figure recomputed: anything more means the files disagree.
SAME_CENT = 0.0051
