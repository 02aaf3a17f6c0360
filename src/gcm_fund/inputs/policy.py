"""The policy as data (docs/policy.md): the checked models a policy TOML file reads into.

`policy_file` reads a file into a `Policy`; every key, its default and its range is stated
here once, and docs/policy.md lists them (a test holds the page to these models).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from gcm_fund.inputs.schema import INCOME_GROUPS, fail, normalise_target, parse_date

_POLICY_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=True)
# Finite only: TOML has `inf` and `nan`, and either would reach the LP.
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Limit = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


class _ByKey(BaseModel):
    """A table of numbers, one per key (an income group, a debt risk)."""

    model_config = _POLICY_CONFIG

    def get(self, key: str) -> float:
        """The value for one key."""
        return float(getattr(self, key))


class ByIncome(_ByKey):
    """A value for each income group."""

    LIC: NonNegative = 1.0
    LMIC: NonNegative = 1.0
    UMIC: NonNegative = 1.0
    HIC: NonNegative = 1.0


class Cofinancing(ByIncome):
    """c[g]: the share of a gap the fund may cover, by income group."""

    LIC: Fraction = 1.0
    LMIC: Fraction = 0.75
    UMIC: Fraction = 0.5
    HIC: Fraction = 0.0


class LoanBurden(ByIncome):
    """burden[g]: how much a loan to a State of group g costs in the objective."""

    LIC: NonNegative = 1.0
    LMIC: NonNegative = 0.5
    UMIC: NonNegative = 0.25
    HIC: NonNegative = 0.0


class RoleWeights(BaseModel):
    """Wr: one weight per migration role; an unnamed role weighs 1.0."""

    model_config = _POLICY_CONFIG
    origin: NonNegative = 1.0
    transit: NonNegative = 1.0
    destination: NonNegative = 1.0


@dataclass(frozen=True)
class _Unquoted:
    """The value of a target code written as a bare TOML key (`10.7 = 1.2`), which TOML
    reads as the nested table {"10": {"7": 1.2}}."""

    code: str
    value: Any


def _target_keys(value: Any) -> Any:
    """Unquoted target codes flattened back to their dotted key, their values marked so
    that each is refused with a hint (one problem per key, not one per table)."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}

    def flatten(prefix: str, item: Any) -> None:
        if isinstance(item, dict) and item:
            for key, inner in item.items():
                flatten(f"{prefix}.{key}", inner)
        else:
            out[prefix] = _Unquoted(prefix, item)

    for key, item in value.items():
        if isinstance(item, dict):
            flatten(str(key), item)
        else:
            out[key] = item
    return out


def _quoted(value: Any) -> Any:
    if isinstance(value, _Unquoted):
        raise fail(
            f"an unquoted target code is read as a nested table: quote it, "
            f'"{value.code}" = ...'
        )
    return value


TargetKey = Annotated[str, BeforeValidator(normalise_target)]
TargetWeights = Annotated[
    dict[TargetKey, Annotated[NonNegative, BeforeValidator(_quoted)]],
    BeforeValidator(_target_keys),
]
TargetShares = Annotated[
    dict[TargetKey, Annotated[Fraction, BeforeValidator(_quoted)]],
    BeforeValidator(_target_keys),
]


class Weights(BaseModel):
    """Priority weights of the objective."""

    model_config = _POLICY_CONFIG
    target: TargetWeights = Field(default_factory=dict)
    income: ByIncome = Field(default_factory=ByIncome)
    role: RoleWeights = Field(default_factory=RoleWeights)


class MaxShare(_ByKey):
    """m by debt risk (docs/terms.md): the most of a State's allocation that may be loans."""

    low: Fraction = 1.0
    moderate: Fraction = 1.0
    high: Fraction = 1.0
    distress: Fraction = 0.0
    unrated: Fraction = 1.0


class Loans(BaseModel):
    """The loan penalty lambda, the burden by income group and the loan share by risk."""

    model_config = _POLICY_CONFIG
    penalty: NonNegative = 0.0
    burden: LoanBurden = Field(default_factory=LoanBurden)
    max_share: MaxShare = Field(default_factory=MaxShare)


class Limits(BaseModel):
    """kappa and the default rho."""

    model_config = _POLICY_CONFIG
    max_state_share: Limit = 1.0
    max_source_state_share: Limit = 1.0


class Thematic(BaseModel):
    """theta[t]: the least share of all allocations that target t must receive."""

    model_config = _POLICY_CONFIG
    min_share: TargetShares = Field(default_factory=dict)

    @field_validator("min_share", mode="after")
    @classmethod
    def _shares_fit(cls, value: dict[str, float]) -> dict[str, float]:
        total = sum(value.values())
        if total > 1 + 1e-12:
            raise fail(f"the shares sum to {total:g}, expected at most 1")
        return value


class Equity(BaseModel):
    """The equity floor: which gaps it binds, whether to maximise it, its least level."""

    model_config = _POLICY_CONFIG
    group: Literal["all", "ldc", "LIC", "LMIC", "UMIC", "HIC"] = "all"
    maximize: bool = True
    min_floor: Fraction = 0.0
    floor_share: Limit = 1.0  # docs/terms.md: the floor held is floor_share x z*
    tolerance: Annotated[float, Field(gt=0, le=0.01)] = 1e-6


class Allocation(BaseModel):
    """How the allocation is chosen among the optima of the floor (docs/model.md)."""

    model_config = _POLICY_CONFIG
    method: Literal["levels", "weighted", "programmes"] = "levels"

    @property
    def fills_by_priority(self) -> bool:
        """Whether the method fills gaps in the order of their priority, the product of
        their weights (docs/model.md's priority levels): every weight must then be > 0 and
        the priorities' spread bounded. Modules below `methods/` ask this, not the name."""
        return self.method == "levels"

    @property
    def reads_programmes(self) -> bool:
        """Whether the method selects programmes, so that the input folder's programmes.csv
        is read (docs/programmes.md)."""
        return self.method == "programmes"


class Regional(BaseModel):
    """theta_r: the least share of all money placed that region r's States must receive
    (docs/programmes.md; a rule of every method, like the thematic shares)."""

    model_config = _POLICY_CONFIG
    min_share: dict[str, Fraction] = Field(default_factory=dict)

    @field_validator("min_share", mode="after")
    @classmethod
    def _shares_fit(cls, value: dict[str, float]) -> dict[str, float]:
        total = sum(value.values())
        if total > 1 + 1e-12:
            raise fail(f"the shares sum to {total:g}, expected at most 1")
        return value


class Programmes(BaseModel):
    """The programmes method's balance (docs/programmes.md): how many funded programmes may
    name one State, an integer >= 1 (absent: no limit, and the canonical policy file
    leaves it out)."""

    model_config = _POLICY_CONFIG
    max_per_state: Annotated[int, Field(ge=1)] | None = None


class Count(BaseModel):
    """The share of a contribution's face value counted, by status (docs/contributions.md)."""

    model_config = _POLICY_CONFIG
    paid: Fraction = 1.0
    signed: Fraction = 1.0
    pledged: Fraction = 0.8

    def of(self, status: str) -> float:
        """The share counted for one status."""
        return float(getattr(self, status))


class Pledges(BaseModel):
    """How contributions become pledges (docs/contributions.md): valued at one date, counted by
    status. `valuation_date` is required when the inputs have contributions.csv."""

    model_config = _POLICY_CONFIG
    valuation_date: Annotated[datetime.date | None, BeforeValidator(parse_date)] = None
    count: Count = Field(default_factory=Count)


class Cycle(BaseModel):
    """Which round this allocation is (docs/cycles.md): every cycle of history.csv is
    below it; required when the inputs have history.csv."""

    model_config = _POLICY_CONFIG
    number: Annotated[int, Field(ge=1)] | None = None


class Performance(BaseModel):
    """The performance factor p_s (docs/cycles.md): execution to the power alpha times
    results to the power beta, clipped to [min_factor, max_factor], over `window` cycles."""

    model_config = _POLICY_CONFIG
    alpha: NonNegative = 0.5
    beta: NonNegative = 0.5
    min_factor: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 0.8
    # Checked even when left out: a min_factor above the default max_factor is refused.
    max_factor: Annotated[float, Field(gt=0, allow_inf_nan=False,
                                       validate_default=True)] = 1.2
    window: Annotated[int, Field(ge=1)] = 2

    @field_validator("max_factor", mode="after")
    @classmethod
    def _bounds_ordered(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_factor")
        if low is not None and value < low:
            raise fail(f"got {value:g}, below min_factor = {low:g}")
        return value


class Carryover(BaseModel):
    """What the last cycle's undisbursed balance does (docs/cycles.md): `keep` lowers the
    State's fundable need by it, `pool` returns it to the pool as the `carryover` source."""

    model_config = _POLICY_CONFIG
    undisbursed: Literal["keep", "pool"] = "keep"


class Pacing(BaseModel):
    """How far a State's allocation may move from what it was committed in the last cycle
    (docs/cycles.md): down by at most `max_cut`, up by at most `max_rise` (none: no limit)."""

    model_config = _POLICY_CONFIG
    max_cut: Fraction = 1.0
    max_rise: NonNegative | None = None


class Policy(BaseModel):
    """A policy file of `models/`: every key optional, unknown keys refused."""

    model_config = _POLICY_CONFIG
    name: str = "unnamed"
    cofinancing: Cofinancing = Field(default_factory=Cofinancing)
    weights: Weights = Field(default_factory=Weights)
    loans: Loans = Field(default_factory=Loans)
    limits: Limits = Field(default_factory=Limits)
    thematic: Thematic = Field(default_factory=Thematic)
    equity: Equity = Field(default_factory=Equity)
    allocation: Allocation = Field(default_factory=Allocation)
    pledges: Pledges = Field(default_factory=Pledges)
    regional: Regional = Field(default_factory=Regional)
    programmes: Programmes = Field(default_factory=Programmes)
    cycle: Cycle = Field(default_factory=Cycle)
    performance: Performance = Field(default_factory=Performance)
    carryover: Carryover = Field(default_factory=Carryover)
    pacing: Pacing = Field(default_factory=Pacing)

    def role_weight(self, roles: tuple[str, ...]) -> float:
        """Wr(s): the largest weight among the roles, 1.0 when there are none."""
        if not roles:
            return 1.0
        return max(float(getattr(self.weights.role, r)) for r in roles)

    def zero_weights(self) -> list[tuple[str, ...]]:
        """Key paths of the weights that are 0: not allowed under `levels`, where a gap's
        priority is a product of weights and a zero would leave the gap no level."""
        found: list[tuple[str, ...]] = []
        found += [("weights", "target", t) for t, w in self.weights.target.items() if w <= 0]
        found += [("weights", "income", g) for g in INCOME_GROUPS
                  if self.weights.income.get(g) <= 0]
        found += [("weights", "role", r) for r in ("origin", "transit", "destination")
                  if float(getattr(self.weights.role, r)) <= 0]
        return found
