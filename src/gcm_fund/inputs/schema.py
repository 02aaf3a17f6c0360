"""The input files' contract as data: cell parsers, row models and the column tables (the
policy's models are `inputs.policy`).

Every column of every input file is described once here (name, type, unit, meaning); the
loader, docs/inputs.md's tables and the messages all follow from these tables.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

INCOME_GROUPS = ("LIC", "LMIC", "UMIC", "HIC")
ROLES = ("origin", "transit", "destination")
KINDS = ("donor", "ifi", "private")
INSTRUMENTS = ("grant", "loan")
EQUITY_GROUPS = ("all", "ldc", *INCOME_GROUPS)
ALLOCATION_METHODS = ("levels", "weighted", "programmes")
# docs/terms.md: risk of external debt distress (IMF-World Bank LIC-DSF); blank reads `unrated`.
DEBT_RISKS = ("low", "moderate", "high", "distress")
RISK_KEYS = (*DEBT_RISKS, "unrated")
STATUSES = ("paid", "signed", "pledged")  # docs/contributions.md: how firm a contribution is

# ASCII digits only: `\d` would also take other scripts' digits, which float() accepts.
# Goal 1 to 17 and a target number without leading zeros (or one letter): `08.7` and
# `8.7` must not be two gaps whose needs count twice.
TARGET_PATTERN = re.compile(r"(1[0-7]|[1-9])\.([1-9][0-9]?|[a-z])")
ISO3_PATTERN = re.compile(r"[A-Z]{3}")
SOURCE_ID_PATTERN = re.compile(r"[a-z0-9_-]+")
# Plain or scientific notation only: float() alone would also take '1_000', 'nan', 'inf'.
NUMBER_PATTERN = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# ISO 4217's active codes (the currencies, the funds codes and the precious metals and SDR
# the ISO list names; not XTS or XXX, which are no money): a typo in a contribution's
# currency is an error, not a missing rate.
CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER
ZAR ZMW ZWG ZWL
""".split())  # noqa: SIM905 - the codes read as ISO 4217 lists them
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})


SHOWN_LENGTH = 40


def fail(message: str) -> PydanticCustomError:
    """A validation error whose text is exactly `message` (pydantic adds no prefix)."""
    return PydanticCustomError("gcm_fund", "{message}", {"message": message})


def shown(value: Any) -> str:
    """A user's value quoted for a message: escaped (one line, printable) and shortened.

    A cell of a damaged file can hold anything, a whole file's worth of text included;
    a message shows enough of it to find it.
    """
    text = str(value)
    if len(text) > SHOWN_LENGTH:
        return repr(text[: SHOWN_LENGTH - 3] + "...") + f" ({len(text)} characters)"
    return repr(text)


def parse_number(text: str, expected: str = "a number") -> float:
    """A finite float from plain or scientific notation; anything else is an error."""
    cleaned = text.strip()
    if not NUMBER_PATTERN.fullmatch(cleaned):
        lowered = cleaned.lower().lstrip("+-")
        if lowered in {"nan", "inf", "infinity"}:
            raise fail(f"got {shown(text)}, expected a finite number")
        if re.search(r"\d[,_ ]\d", cleaned) or re.search(r"[$€£¥]|USD", cleaned):
            raise fail(
                f"got {shown(text)}, expected {expected} written plainly "
                "(no thousands separators or currency signs)"
            )
        raise fail(f"got {shown(text)}, expected {expected}")
    value = float(cleaned)
    if math.isinf(value):
        raise fail(f"got {shown(text)}, out of range for a number")
    return value


@dataclass(frozen=True)
class Range:
    """The values a number column accepts: between `low` and `high`, each end open or
    closed. One object serves the row model's check, the message and the README."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = True

    def text(self) -> str:
        """As the README and messages write it: `>= 0`, `> 0`, `in [0, 1]`, `in (0, 1]`."""
        if math.isinf(self.high):
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


NON_NEGATIVE = Range(0, math.inf)
POSITIVE = Range(0, math.inf, low_open=True)
UNIT_INTERVAL = Range(0, 1, high_open=False)
CAP_INTERVAL = Range(0, 1, low_open=True, high_open=False)


def _number_in(allowed: Range, unit: str = ""):
    what = f"{allowed.text()}{f' ({unit})' if unit else ''}"

    def check(text: Any) -> float:
        value = parse_number(str(text), f"a number {what}")
        if value not in allowed:
            raise fail(f"got {shown(str(text).strip())}, expected a number {what}")
        return value

    return check


def _parse_bool(text: Any) -> bool:
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise fail(f"got {shown(str(text).strip())}, expected true or false")


def did_you_mean(value: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean X?)' when a choice is near `value`, else ''."""
    import difflib

    upper = {c.upper(): c for c in choices}
    if value.upper() in upper:
        return f" (did you mean {upper[value.upper()]}?)"
    near = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


def _one_of(choices: tuple[str, ...]):
    def check(text: Any) -> str:
        value = str(text).strip()
        if value not in choices:
            hint = did_you_mean(value, choices)
            raise fail(f"got {shown(value)}, expected one of {', '.join(choices)}{hint}")
        return value

    return check


def normalise_target(text: str) -> str:
    """A target code in canonical form ('10.C' -> '10.c'); raises on anything else."""
    value = str(text).strip().lower()
    if not TARGET_PATTERN.fullmatch(value):
        raise fail(
            f"got {shown(str(text).strip())}, expected an SDG target code such as 10.7 or 10.c"
            f"{_target_hint(value)}"
        )
    return value


def _target_hint(value: str) -> str:
    """Why a code of the right shape is still not a target: a leading zero or goal 0, 18+."""
    loose = re.fullmatch(r"([0-9]{1,2})\.([0-9]{1,2}|[a-z])", value)
    if not loose:
        return ""
    goal, target = loose.groups()
    if not 1 <= int(goal) <= 17:
        return " (goals are numbered 1 to 17)"
    if target.isdigit() and int(target) == 0:
        return " (targets are numbered from 1)"
    return f" (no leading zeros: {int(goal)}.{int(target) if target.isdigit() else target})"


def parse_iso3(text: Any) -> str:
    value = str(text).strip()
    if not ISO3_PATTERN.fullmatch(value):
        hint = f" (did you mean {value.upper()}?)" if ISO3_PATTERN.fullmatch(value.upper()) else ""
        raise fail(f"got {shown(value)}, expected 3 upper-case letters{hint}")
    return value


def parse_source_id(text: Any) -> str:
    value = str(text).strip()
    if not SOURCE_ID_PATTERN.fullmatch(value):
        raise fail(f"got {shown(value)}, expected lower-case letters, digits, '_' or '-'")
    return value


def parse_currency(text: Any) -> str:
    """An ISO 4217 currency code (three upper-case letters, one the standard lists)."""
    value = str(text).strip()
    if value not in CURRENCIES:
        if ISO3_PATTERN.fullmatch(value.upper()) and value.upper() in CURRENCIES:
            hint = f" (did you mean {value.upper()}?)"
        else:
            hint = did_you_mean(value, sorted(CURRENCIES))
        raise fail(f"got {shown(value)}, expected an ISO 4217 currency code such as USD, "
                   f"EUR or NOK{hint}")
    return value


def parse_date(text: Any) -> datetime.date:
    """A calendar date written YYYY-MM-DD (a TOML date is taken as it is; a date-time,
    which has a time of day, is not a date)."""
    if isinstance(text, datetime.datetime):
        raise fail(f"got {text.isoformat()}, expected a date YYYY-MM-DD without a time")
    if isinstance(text, datetime.date):
        return text
    if not isinstance(text, str):
        raise fail(f"got {shown(text)}, expected a date YYYY-MM-DD")
    value = text.strip()
    if not DATE_PATTERN.fullmatch(value):
        raise fail(f"got {shown(value)}, expected a date YYYY-MM-DD")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise fail(f"got {shown(value)}, not a day of the calendar (YYYY-MM-DD)") from None


def split_list(text: Any) -> tuple[str, ...]:
    """A ';'-list: items stripped, empty and repeated items dropped, order kept."""
    items: list[str] = []
    for item in str(text).split(";"):
        item = item.strip()
        if item and item not in items:
            items.append(item)
    return tuple(items)


def _list_of(item_check):
    def check(text: Any) -> tuple[str, ...]:
        return tuple(item_check(item) for item in split_list(text))

    return check


def _text(text: Any) -> str:
    return str(text).strip()


Text = Annotated[str, BeforeValidator(_text)]
Iso3 = Annotated[str, BeforeValidator(parse_iso3)]
SourceId = Annotated[str, BeforeValidator(parse_source_id)]
IncomeGroup = Annotated[str, BeforeValidator(_one_of(INCOME_GROUPS))]
Kind = Annotated[str, BeforeValidator(_one_of(KINDS))]
Instrument = Annotated[str, BeforeValidator(_one_of(INSTRUMENTS))]
DebtRisk = Annotated[str, BeforeValidator(_one_of(DEBT_RISKS))]
Target = Annotated[str, BeforeValidator(normalise_target)]
Bool = Annotated[bool, BeforeValidator(_parse_bool)]
Usd = Annotated[float, BeforeValidator(_number_in(NON_NEGATIVE, "USD"))]
Currency = Annotated[str, BeforeValidator(parse_currency)]
Status = Annotated[str, BeforeValidator(_one_of(STATUSES))]
Date = Annotated[datetime.date, BeforeValidator(parse_date)]
Amount = Annotated[float, BeforeValidator(_number_in(POSITIVE, "units of its currency"))]
Rate = Annotated[float, BeforeValidator(_number_in(POSITIVE, "USD per unit"))]
Persons = Annotated[float, BeforeValidator(_number_in(NON_NEGATIVE))]
PositiveUsd = Annotated[float, BeforeValidator(_number_in(POSITIVE, "USD"))]
UnitShare = Annotated[float, BeforeValidator(_number_in(UNIT_INTERVAL))]
CapShare = Annotated[float, BeforeValidator(_number_in(CAP_INTERVAL))]
RoleList = Annotated[tuple[str, ...], BeforeValidator(_list_of(_one_of(ROLES)))]
TargetList = Annotated[tuple[str, ...], BeforeValidator(_list_of(normalise_target))]
TextList = Annotated[tuple[str, ...], BeforeValidator(split_list)]


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class StateRow(_Row):
    """One row of states.csv."""

    iso3: Iso3
    name: Text
    region: Text
    income_group: IncomeGroup
    roles: RoleList = ()
    ldc: Bool = False
    debt_distress: Bool = False
    debt_risk: DebtRisk | None = None
    absorption_usd: Usd | None = None
    gni_usd: Usd | None = None
    population: Persons | None = None
    migrants_hosted: Persons | None = None
    eligible: Bool = True

    @field_validator("debt_risk", mode="after")
    @classmethod
    def _risk_fits_distress(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("debt_distress") and value not in (None, "distress"):
            raise fail(f"got {shown(value)}, but debt_distress is true, which means "
                       "distress: leave debt_risk blank or write distress")
        return value


class GapRow(_Row):
    """One row of gaps.csv."""

    iso3: Text  # checked against states.csv by the loader, with a hint
    target: Target
    need_usd: PositiveUsd


class SourceRow(_Row):
    """One row of sources.csv."""

    source_id: SourceId
    name: Text
    kind: Kind
    instrument: Instrument
    # Blank only for a source with rows in contributions.csv (docs/contributions.md), which the
    # loader checks; such a source's B_f is counted from its rows.
    pledge_usd: Usd | None = None
    grant_element: UnitShare | None = Field(default=None, validate_default=True)
    targets: TargetList = ()
    regions: TextList = ()
    income_groups: TextList = ()  # checked by the loader so that every bad item is named
    exclude_states: TextList = ()
    max_state_share: CapShare | None = None
    donor_iso3: Text | None = None

    @field_validator("grant_element", mode="after")
    @classmethod
    def _grant_element_fits_instrument(cls, value: float | None, info: ValidationInfo):
        instrument = info.data.get("instrument")
        if instrument == "loan" and value is None:
            raise fail("a loan needs a grant_element in [0, 1]")
        if instrument == "grant" and value not in (None, 1.0):
            raise fail(f"got {value:g}, a grant's grant_element is blank or 1")
        return value


class ContributionRow(_Row):
    """One row of contributions.csv (docs/contributions.md): money a source gave, signed or
    announced,
    in its own currency."""

    source_id: SourceId  # checked against sources.csv by the loader
    currency: Currency
    amount: Amount
    status: Status
    date: Date


class FxRow(_Row):
    """One row of fx.csv (docs/contributions.md): a published rate, USD per unit of a currency, on
    a day."""

    currency: Currency
    date: Date
    usd_per_unit: Rate
    source: Text

    @field_validator("usd_per_unit", mode="after")
    @classmethod
    def _usd_is_one(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("currency") == "USD" and value != 1.0:
            raise fail(f"got {value:g}, a USD rate is 1")
        return value

class ProgrammeRow(_Row):
    """One row of programmes.csv (docs/programmes.md); references and shares are checked by the
    loader, against states.csv and gaps.csv."""

    programme_id: SourceId
    name: Text
    states: TextList
    targets: TargetList
    budget_usd: PositiveUsd
    min_usd: PositiveUsd | None = None
    quality: UnitShare = 1.0
    shares: TextList = ()

    @field_validator("states", "targets", mode="after")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise fail("required, got an empty list")
        return value

    @field_validator("min_usd", mode="after")
    @classmethod
    def _min_fits_budget(cls, value: float | None, info: ValidationInfo):
        budget = info.data.get("budget_usd")
        if value is not None and budget is not None and value > budget:
            raise fail(f"got {value:g}, above budget_usd {budget:g}: expected a number in "
                       "(0, budget_usd] (USD)")
        return value

    @property
    def minimum_usd(self) -> float:
        """M_p: min_usd, or the budget when blank."""
        return self.budget_usd if self.min_usd is None else self.min_usd


@dataclass(frozen=True)
class Column:
    """One column of an input file: the contract of docs/inputs.md, as data.

    `kind` is what a cell holds ("number", "text", "true/false", ...); `range` bounds a
    number, `choices` an enumeration: the README's type text is made from them, and the
    tests check the row models against them field by field.
    """

    name: str
    kind: str
    unit: str
    required: bool
    meaning: str
    range: Range | None = None
    choices: tuple[str, ...] = ()
    # A required column whose cell may be blank where another file says so (pledge_usd
    # beside contributions.csv): the loader, not the CSV reader, decides.
    blank_allowed: bool = False

    @property
    def type(self) -> str:
        """The type as the README's column tables write it."""
        if self.range is not None:
            return f"{self.kind} {self.range.text()}"
        if self.choices:
            return " ".join(self.choices)
        return self.kind


@dataclass(frozen=True)
class Reference:
    """A column whose values (one, or each item of a `;`-list) must be keys of another
    file: `gaps.csv` `iso3` -> `states.csv` `iso3`."""

    file: str
    column: str
    to_file: str
    to_column: str


@dataclass(frozen=True)
class InputFile:
    """One input file: its row model, its columns, its key and its references."""

    name: str
    model: type[_Row]
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    references: tuple[Reference, ...] = ()

    def column(self, name: str) -> Column:
        """The column called `name`."""
        return next(c for c in self.columns if c.name == name)

    # A pair, for callers that unpack `model, columns = INPUT_FILES[name]`.
    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.columns))


STATE_COLUMNS = (
    Column("iso3", "3 upper-case letters, unique", "", True, "key"),
    Column("name", "text", "", True, "the State's name"),
    Column("region", "text", "", True, "region, matched by source earmarks"),
    Column("income_group", "one of", "", True, "capacity class", choices=INCOME_GROUPS),
    Column("roles", ";-list of origin transit destination", "", False, "migration roles"),
    Column("ldc", "true/false", "", False, "least developed country"),
    Column("debt_distress", "true/false", "", False,
           "loans may not go to this State"),
    Column("debt_risk", "one of", "", False,
           "risk of external debt distress (IMF-World Bank LIC-DSF); blank = not rated",
           choices=DEBT_RISKS),
    Column("absorption_usd", "number", "USD", False,
           "most the State can absorb, blank = no limit", range=NON_NEGATIVE),
    Column("gni_usd", "number", "USD", False, "gross national income, for fair shares only",
           range=NON_NEGATIVE),
    Column("population", "number", "persons", False,
           "for the per-capita-adjusted fair share only", range=NON_NEGATIVE),
    Column("migrants_hosted", "number", "persons", False,
           "international migrants living in the State, for the rci fair share only",
           range=NON_NEGATIVE),
    Column("eligible", "true/false", "", False,
           "false: no source may fund this State; blank = true"),
)
GAP_COLUMNS = (
    Column("iso3", "iso3 in states.csv", "", True, "the State"),
    Column("target", "SDG target code", "", True, "the migration-related target"),
    Column("need_usd", "number", "USD", True, "capacity gap: what the State cannot yet fund",
           range=POSITIVE),
)
SOURCE_COLUMNS = (
    Column("source_id", "[a-z0-9_-]+, unique", "", True, "key"),
    Column("name", "text", "", True, "the source's name"),
    Column("kind", "one of", "", True, "who pledges", choices=KINDS),
    Column("instrument", "one of", "", True, "how the money is given", choices=INSTRUMENTS),
    Column("pledge_usd", "number", "USD", True,
           "the pledge B_f; blank for a source with rows in contributions.csv",
           range=NON_NEGATIVE, blank_allowed=True),
    Column("grant_element", "number", "share", False,
           "concessionality g_f; required for loans", range=UNIT_INTERVAL),
    Column("targets", ";-list of target codes", "", False, "earmark: blank = all"),
    Column("regions", ";-list of regions", "", False, "earmark: blank = all"),
    Column("income_groups", ";-list of income groups", "", False, "earmark: blank = all"),
    Column("exclude_states", ";-list of iso3", "", False, "earmark: States left out"),
    Column("max_state_share", "number", "share", False, "rho_f; blank = the policy's",
           range=CAP_INTERVAL),
    Column("donor_iso3", "iso3 in states.csv", "", False,
           "the contributing State, for fair shares"),
)

INPUT_FILES: dict[str, InputFile] = {
    "states.csv": InputFile("states.csv", StateRow, STATE_COLUMNS, key=("iso3",)),
    "gaps.csv": InputFile("gaps.csv", GapRow, GAP_COLUMNS, key=("iso3", "target"),
                          references=(Reference("gaps.csv", "iso3", "states.csv", "iso3"),)),
    "sources.csv": InputFile(
        "sources.csv", SourceRow, SOURCE_COLUMNS, key=("source_id",),
        references=(Reference("sources.csv", "exclude_states", "states.csv", "iso3"),
                    Reference("sources.csv", "donor_iso3", "states.csv", "iso3"))),
}

PROGRAMME_FILE = "programmes.csv"
PROGRAMME_COLUMNS = (
    Column("programme_id", "[a-z0-9_-]+, unique", "", True, "key"),
    Column("name", "text", "", True, "the programme's name"),
    Column("states", ";-list of iso3", "", True,
           "where it works; a joint programme names several"),
    Column("targets", ";-list of target codes", "", True, "what it serves"),
    Column("budget_usd", "number", "USD", True, "requested, R_p", range=POSITIVE),
    Column("min_usd", "number", "USD", False,
           "smallest viable amount M_p, in (0, budget_usd]; blank = budget_usd",
           range=POSITIVE),
    Column("quality", "number", "share", False, "the review panel's score q_p; blank = 1",
           range=UNIT_INTERVAL),
    Column("shares", ";-list of ISO3:TARGET=share", "", False,
           "how its money counts toward its gaps; shares > 0 summing to 1; blank = by U"),
)
CONTRIBUTION_FILE = "contributions.csv"
FX_FILE = "fx.csv"
CONTRIBUTION_COLUMNS = (
    Column("source_id", "source_id in sources.csv", "", True,
           "the source; several rows per source"),
    Column("currency", "ISO 4217 code", "", True, "the currency of the amount"),
    Column("amount", "number", "units of the currency", True, "the money", range=POSITIVE),
    Column("status", "one of", "", True, "how firm it is", choices=STATUSES),
    Column("date", "YYYY-MM-DD", "", True, "when it was paid, signed or announced"),
)
FX_COLUMNS = (
    Column("currency", "ISO 4217 code", "", True, "the currency"),
    Column("date", "YYYY-MM-DD", "", True, "the day of the rate"),
    Column("usd_per_unit", "number", "USD per unit", True, "the rate; 1 for USD",
           range=POSITIVE),
    Column("source", "text", "", True, "who published the rate"),
)
class InputMeta(BaseModel):
    """The optional `meta.toml` of an input folder: what the data are, for every reader."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    illustrative: bool = False  # true: the figures are invented, every output says so
    description: str = ""


META_FILE = "meta.toml"
