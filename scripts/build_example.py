"""Build the bundled example inputs of gcm_fund from the shared country data.

Reads ``countries.csv`` (see ``shared/data/PROVENANCE.md``) and writes two input folders in
the format of SPEC section 2, with the same States and gaps and different sources:

- ``inputs/`` (the bundled example; a HYPOTHETICAL SCALE-UP): ``states.csv`` (the 193 UN
  member States, with region, income group, migration roles, LDC, debt-distress and
  eligibility flags, an absorption limit, GNI and migrants hosted), ``gaps.csv`` (capacity
  gaps, USD per year, for six migration-related SDG targets, for low- and middle-income
  States only), ``sources.csv`` (illustrative pledges of USD 2,015 million, 57 % loans from
  development-bank windows) and ``meta.toml`` (``illustrative = true``);
- ``scenarios/mptf_scale/``: the same States and gaps with USD 70 million of grants only,
  the capitalisation target of the UN Migration Multi-Partner Trust Fund: the scale pooled
  migration funds actually have.

Published figures (names, regions, income groups, LDC status, migrant and emigrant stocks,
remittances, remittance costs, GNI) are copied from the data. Everything else (role
thresholds, the transit and debt-distress lists, the absorption rule, unit costs and every
pledge) is an ASSUMPTION or ILLUSTRATIVE and is marked so below and in ``inputs/README.md``.

The output is deterministic: the same data give byte-identical files (sorted rows, exact
decimal arithmetic, amounts rounded half-up to whole USD and written as plain integers).

Usage::

    python scripts/build_example.py [DATA] [--out DIR] [--scenario-out DIR]

DATA is the folder holding ``countries.csv`` (or the file itself); it defaults to the
environment variable GCM_FUND_SHARED_DATA, else ``shared/data`` next to the repository.
``--out`` defaults to the repository's ``inputs/``, ``--scenario-out`` to its
``scenarios/mptf_scale/``.
Only the Python standard library is used, so the script runs without the project's venv.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("GCM_FUND_SHARED_DATA")
                    or Path(__file__).resolve().parents[2] / "shared" / "data")
DEFAULT_OUT = REPO / "inputs"
DEFAULT_SCENARIO_OUT = REPO / "scenarios" / "mptf_scale"

# World Bank FY2026 CLASS labels (as shortened in countries.csv) to the codes of SPEC section 2.
INCOME_CODES = {"low": "LIC", "lower-middle": "LMIC", "upper-middle": "UMIC", "high": "HIC"}

# ASSUMPTION: CLASS FY2026 leaves two UN members unclassified. The optimizer needs a group for
# every State, so each gets its most recent World Bank classification:
# - Ethiopia is "temporarily unclassified" in FY26; it was classified low income up to FY25.
# - Venezuela has been unclassified since about 2021 (FY21 per the CLASS notes cited in
#   PROVENANCE.md, pending revised national accounts); its last classification was
#   upper-middle income.
INCOME_ASSUMED = {"ETH": "LIC", "VEN": "UMIC"}

# ASSUMPTION: role thresholds. The data hold stocks, not flows or population, so the roles are
# read off the UN DESA 2024 stocks (and remittance dependence) with round, labelled cut-offs.
ORIGIN_EMIGRANTS_MIN = 1_000_000  # emigrant stock at or above this: origin
DESTINATION_IMMIGRANTS_MIN = 1_000_000  # immigrant stock at or above this: destination
NET_STOCK_MIN = 100_000  # smaller States: origin/destination when the larger stock is >= this
ORIGIN_REMITTANCE_GNI_MIN = Decimal("0.05")  # remittances received >= 5 % of GNI: origin

# ILLUSTRATIVE: no column in the data identifies transit States. These are States on widely
# reported transit routes (Central America and the Darien, the Western Balkans, the Central
# and Western Mediterranean and Sahel, the Eastern route from the Horn of Africa). The list is
# short on purpose and is not an official or exhaustive classification.
TRANSIT_ILLUSTRATIVE = frozenset(
    {
        "BIH", "COL", "DJI", "GTM", "HND", "LBY", "MAR", "MEX", "MKD", "MLI", "NER", "PAN",
        "SDN", "SRB", "TUN", "TUR", "YEM",
    }
)  # fmt: skip

# ILLUSTRATIVE: the data hold no debt sustainability ratings. A handful of States commonly
# reported in, or at high risk of, debt distress or in sovereign debt restructuring around
# 2022-2024. This is NOT the IMF/World Bank DSA list; it only exercises the rule that loans
# are not made to debt-distressed States.
DEBT_DISTRESS_ILLUSTRATIVE = frozenset({"ETH", "GHA", "LAO", "LKA", "MWI", "SDN", "ZMB", "ZWE"})

# ASSUMPTION (illustrative): a State can absorb at most 0.5 % of its GNI per year from the
# fund for all targets together (a stand-in for implementation capacity), and never less
# than USD 1 million (so that small States are not shut out). Where the data hold no GNI,
# "no limit" would hand the least documented States the most money, so the FALLBACK is the
# regional median: the median limit of the States with GNI in the same UN sub-region
# (intermediate region where M49 has one) and income group, else the same UN region and
# income group, else the income group.
ABSORPTION_GNI_SHARE = Decimal("0.005")
ABSORPTION_MIN_USD = Decimal("1000000")

# CORRECTION of a stale value: the M49 snapshot of Sept 2024 still flags Sao Tome and
# Principe as an LDC. It graduated from the LDC category on 13 December 2024 (UN-OHRLLS and
# the UN DESA LDC portal list it as graduated).
LDC_GRADUATED = {"STP": "2024-12-13"}

# ELIGIBILITY (states.csv `eligible = false`): States the fund cannot pay, from named lists.
# - PRK: under the UN Security Council sanctions regime of resolution 1718 (2006) and its
#   successors (the 1718 Committee), which bar financial support to the State.
# - AFG, MMR: no recognised counterpart. The UN General Assembly, on its Credentials
#   Committee's recommendation, has deferred its decision on the credentials of both States
#   at every session since its 76th (December 2021): no government of either is recognised
#   at the UN, so a fund paying governments has no one to pay.
# Unilateral sanctions (for example on Cuba or Iran) are not applied: a multilateral fund's
# eligibility is set by its members, and one member's measures are not that list.
NOT_ELIGIBLE = {"PRK": "UN Security Council resolution 1718 (2006) sanctions",
                "AFG": "UN credentials deferred since Dec 2021",
                "MMR": "UN credentials deferred since Dec 2021"}

# World Bank lending categories (CLASS FY2026, `wb_lending_category`): IDA, IBRD or Blend
# (a Blend State borrows from both). The IDA-like window lends to IDA and Blend States, the
# IBRD-like window to IBRD and Blend States. Paused: the World Bank paused disbursements to
# Afghanistan in August 2021 and to Myanmar after the military takeover of February 2021.
# Syria is NOT paused: its IDA arrears were cleared on 12 May 2025 and the World Bank
# reinstated its eligibility for new operations (World Bank statement, May 2025).
IDA_CATEGORIES = frozenset({"IDA", "Blend"})
IBRD_CATEGORIES = frozenset({"IBRD", "Blend"})
WB_LENDING_PAUSED = frozenset({"AFG", "MMR"})

# Regional development banks: the UN members each one lends to, from the bank's own list.
# ADB: its developing member countries (ADB, "Members", regional developing members, and
# the ADB Annual Report 2024), Cook Islands and Niue left out (not UN members). ADB placed
# its assistance to Afghanistan (August 2021) and Myanmar (February 2021) on hold.
ADB_BORROWERS = frozenset(
    {
        "AFG", "ARM", "AZE", "GEO", "KAZ", "KGZ", "PAK", "TJK", "TKM", "UZB",  # Central, West
        "CHN", "MNG",  # East Asia
        "FJI", "FSM", "KIR", "MHL", "NRU", "PLW", "PNG", "SLB", "TLS", "TON", "TUV", "VUT",
        "WSM",  # Pacific
        "BGD", "BTN", "IND", "LKA", "MDV", "NPL",  # South Asia
        "IDN", "KHM", "LAO", "MMR", "MYS", "PHL", "THA", "VNM",  # Southeast Asia
    }
)  # fmt: skip
ADB_PAUSED = frozenset({"AFG", "MMR"})
# AfDB: its 54 regional member countries, which are the 54 UN members of the M49 region
# Africa (AfDB, "Member countries"); the build checks that the two lists agree.
AFDB_REGION = "Africa"
# IDB: its 26 borrowing member countries (IDB, "Member countries", borrowing members).
# Venezuela is left out: the IDB has not lent to it since it fell into arrears with the
# bank (2018-2019, as widely reported); an ILLUSTRATIVE reading to check against the IDB.
IDB_BORROWERS = frozenset(
    {
        "ARG", "BHS", "BLZ", "BOL", "BRA", "BRB", "CHL", "COL", "CRI", "DOM", "ECU", "GTM",
        "GUY", "HND", "HTI", "JAM", "MEX", "NIC", "PAN", "PER", "PRY", "SLV", "SUR", "TTO",
        "URY", "VEN",
    }
)  # fmt: skip
IDB_PAUSED = frozenset({"VEN"})

# SDG 10.c: reduce to less than 3 % the transaction costs of migrant remittances. Lowering
# prices is regulatory and market work, so the 10.c gap is the cost of a capacity programme a
# fund can pay for, not the fees paid above 3 %: for each remittance market where the data
# show the target missed (inbound cost above 3 %), a fixed programme (a market diagnostic,
# proportionate licensing and supervision of remittance providers, their access to the
# national payment system, a price-comparison database) plus a part that grows with the
# market's size, up to a cap. ASSUMPTION: the three figures are round numbers for the
# example, not a published costing.
SDG_10C_TARGET_PCT = Decimal("3")
REMIT_PROGRAMME_BASE_USD = Decimal("500000")
REMIT_PROGRAMME_SHARE = Decimal("0.0001")  # 1 basis point of yearly remittances received
REMIT_PROGRAMME_CAP_USD = Decimal("5000000")

# ILLUSTRATIVE unit costs, USD per year, flat across States. They are NOT a published
# costing; they only give each target a need that scales with the real stocks. Keys: "base"
# per State (a fixed programme cost, so that small States do not get needs of a few thousand
# USD), "immigrant" per immigrant (migrant stock 2024), "emigrant" per emigrant (emigrant
# stock 2024).
UNIT_COSTS: dict[str, dict[str, Decimal]] = {
    # 10.7 well-managed migration policies: a fixed cost of running migration governance
    # (data, consular and policy capacity) plus a cost per person in either stock.
    "10.7": {"base": Decimal("1000000"), "immigrant": Decimal("5"), "emigrant": Decimal("5")},
    # 8.8 labour rights of migrant workers: inspection and redress where migrants work
    # (immigrants), pre-departure and consular labour support for emigrants.
    "8.8": {"base": Decimal("250000"), "immigrant": Decimal("15"), "emigrant": Decimal("5")},
    # 8.7 forced labour and trafficking: identification and victim support, both stocks.
    "8.7": {"base": Decimal("250000"), "immigrant": Decimal("5"), "emigrant": Decimal("5")},
    # 5.2 violence against women and girls, incl. trafficking: services for migrant women.
    "5.2": {"base": Decimal("250000"), "immigrant": Decimal("4"), "emigrant": Decimal("4")},
    # 16.2 abuse, exploitation, trafficking of children: child protection for migrants.
    "16.2": {"base": Decimal("250000"), "immigrant": Decimal("4"), "emigrant": Decimal("4")},
}
TARGETS = ("10.7", "10.c", "8.8", "8.7", "5.2", "16.2")

# Income groups with gaps. HIC States get no gaps: the fund is for States that lack the
# resources, and the SPEC default co-financing share for HIC is 0 under every bundled policy.
GAP_INCOME_GROUPS = ("LIC", "LMIC", "UMIC")

# Baseline co-financing shares (SPEC section 3 defaults), only for the printed summary.
BASELINE_COFINANCING = {"LIC": Decimal("1"), "LMIC": Decimal("0.75"), "UMIC": Decimal("0.5"),
                        "HIC": Decimal("0")}  # fmt: skip

# ILLUSTRATIVE funding sources. Every pledge amount, grant element, earmark and cap is
# invented for the example. No USD pledge appears in the shared data: the only amount there
# is Norway's announced NOK 15 million to the Migration MPTF, which is not converted here.
# NOR, DEU, DNK, NLD, ESP, GBR, USA and MAR are the contributors that
# migration_mptf_contributions.csv names; SWE and CHE are added as illustrative donors
# without evidence in the data. Earmarks are interpretations for the example.
# Columns: source_id, name, kind, instrument, pledge_usd, grant_element, targets, regions,
# income_groups, exclude_states, max_state_share, donor_iso3.
SOURCES: tuple[tuple[str, ...], ...] = (
    # Germany: called "the largest donor to the fund" in a quoted remark (no amount), so it
    # gets the largest illustrative bilateral pledge; unearmarked.
    ("deu", "Germany grant (illustrative pledge)", "donor", "grant", "250000000", "1",
     "", "", "", "", "", "DEU"),
    ("usa", "United States grant (illustrative pledge)", "donor", "grant", "180000000", "1",
     "10.7;8.7;16.2", "", "", "", "", "USA"),
    # United Kingdom: earmarked to forced labour and trafficking targets (interpretation).
    ("gbr", "United Kingdom grant (illustrative pledge)", "donor", "grant", "120000000", "1",
     "8.7;5.2;16.2", "", "", "", "", "GBR"),
    ("nld", "Netherlands grant (illustrative pledge)", "donor", "grant", "70000000", "1",
     "", "", "", "", "", "NLD"),
    ("swe", "Sweden grant (illustrative donor and pledge)", "donor", "grant", "50000000", "1",
     "", "", "LIC;LMIC", "", "", "SWE"),
    # Norway: its announcement was earmarked to the MPTF's "thematic area 2"; reading that
    # area as protection of migrants maps it to 8.7, 5.2 and 16.2 (an interpretation).
    ("nor", "Norway grant (illustrative pledge)", "donor", "grant", "40000000", "1",
     "8.7;5.2;16.2", "", "", "", "", "NOR"),
    ("dnk", "Denmark grant (illustrative pledge)", "donor", "grant", "40000000", "1",
     "", "Africa", "", "", "", "DNK"),
    ("che", "Switzerland grant (illustrative donor and pledge)", "donor", "grant", "30000000",
     "1", "10.7;10.c;8.8", "", "", "", "", "CHE"),
    ("esp", "Spain grant (illustrative pledge)", "donor", "grant", "30000000", "1",
     "", "Africa;Americas", "", "", "", "ESP"),
    # Morocco: a South contributor; illustrative earmark to its own region.
    ("mar", "Morocco grant (illustrative pledge)", "donor", "grant", "5000000", "1",
     "", "Africa", "", "", "", "MAR"),
    # Development banks: loan windows lending only where the bank lends (see the borrower
    # lists above); `exclude_states` is filled in by `bank_exclusions` at build time.
    ("afdb", "AfDB-like concessional loan window (illustrative)", "ifi", "loan", "300000000",
     "0.45", "", "Africa", "", "", "0.15", ""),
    ("adb", "AsDB-like concessional loan window (illustrative)", "ifi", "loan", "300000000",
     "0.35", "", "Asia;Oceania", "", "", "0.15", ""),
    ("idb", "IDB-like concessional loan window (illustrative)", "ifi", "loan", "200000000",
     "0.4", "", "Americas", "", "", "0.2", ""),
    ("wb_ibrd", "IBRD-like loan window (illustrative)", "ifi", "loan", "150000000",
     "0.15", "", "", "", "", "0.1", ""),
    ("wb_ida", "IDA-like concessional loan window (illustrative)", "ifi", "loan", "200000000",
     "0.6", "", "", "", "", "0.1", ""),
    ("private_remit", "Private remittance and fair-recruitment facility (illustrative)",
     "private", "grant", "50000000", "1", "10.c;8.8", "", "", "", "", ""),
)  # fmt: skip

# ILLUSTRATIVE: the fund at the scale pooled migration funds actually have. The UN Migration
# MPTF's capitalisation target is USD 70 million, grants only. The eight contributors are
# those migration_mptf_contributions.csv names; the split of USD 70 million among them is
# invented (roughly in proportion to the scale-up's pledges), and each keeps its earmark
# from the scale-up. No amount here is a deposit record.
MPTF_SCALE_SOURCES: tuple[tuple[str, ...], ...] = (
    ("deu", "Germany grant (illustrative pledge, MPTF scale)", "donor", "grant", "24000000",
     "1", "", "", "", "", "", "DEU"),
    ("usa", "United States grant (illustrative pledge, MPTF scale)", "donor", "grant",
     "17000000", "1", "10.7;8.7;16.2", "", "", "", "", "USA"),
    ("gbr", "United Kingdom grant (illustrative pledge, MPTF scale)", "donor", "grant",
     "11500000", "1", "8.7;5.2;16.2", "", "", "", "", "GBR"),
    ("nld", "Netherlands grant (illustrative pledge, MPTF scale)", "donor", "grant", "6500000",
     "1", "", "", "", "", "", "NLD"),
    ("nor", "Norway grant (illustrative pledge, MPTF scale)", "donor", "grant", "4000000",
     "1", "8.7;5.2;16.2", "", "", "", "", "NOR"),
    ("dnk", "Denmark grant (illustrative pledge, MPTF scale)", "donor", "grant", "3500000",
     "1", "", "Africa", "", "", "", "DNK"),
    ("esp", "Spain grant (illustrative pledge, MPTF scale)", "donor", "grant", "3000000",
     "1", "", "Africa;Americas", "", "", "", "ESP"),
    ("mar", "Morocco grant (illustrative pledge, MPTF scale)", "donor", "grant", "500000",
     "1", "", "Africa", "", "", "", "MAR"),
)  # fmt: skip
MPTF_CAPITALISATION_USD = 70_000_000

META_SCALE_UP = (
    "illustrative = true\n"
    'description = "Hypothetical scale-up: USD 2,015 million of invented pledges (57 % '
    'development-bank loans) on public country data; unit costs and pledges are '
    'assumptions, see inputs/README.md."\n'
)
META_MPTF_SCALE = (
    "illustrative = true\n"
    'description = "The fund at the UN Migration MPTF\'s scale: USD 70 million of grants, '
    'an invented split among its named contributors, on public country data; see '
    'inputs/README.md."\n'
)

STATES_HEADER = ("iso3", "name", "region", "income_group", "roles", "ldc", "debt_distress",
                 "absorption_usd", "gni_usd", "migrants_hosted", "eligible")  # fmt: skip
GAPS_HEADER = ("iso3", "target", "need_usd")
SOURCES_HEADER = ("source_id", "name", "kind", "instrument", "pledge_usd", "grant_element",
                  "targets", "regions", "income_groups", "exclude_states", "max_state_share",
                  "donor_iso3")  # fmt: skip

TARGET_RE = re.compile(r"^[0-9]{1,2}\.([0-9]{1,2}|[a-z])$")


def dec(value: str) -> Decimal | None:
    """Return a cell as an exact Decimal, or None when blank."""
    value = value.strip()
    return Decimal(value) if value else None


def usd(amount: Decimal) -> int:
    """Round to whole USD, half up (not Python's half-even), for stable integers."""
    return int(amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def read_countries(path: Path) -> list[dict[str, str]]:
    """Return the rows of countries.csv for UN member States, sorted by iso3."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [row for row in csv.DictReader(fh) if row["un_member"] == "true"]
    return sorted(rows, key=lambda r: r["iso3"])


def income_group(row: Mapping[str, str]) -> str:
    """Return the SPEC income-group code, using the assumption for unclassified States."""
    label = row["wb_income_group"].strip()
    if label:
        return INCOME_CODES[label]
    if row["iso3"] in INCOME_ASSUMED:
        return INCOME_ASSUMED[row["iso3"]]
    raise SystemExit(f"{row['iso3']}: no income group in the data and no assumption for it")


def roles(row: Mapping[str, str]) -> str:
    """Return the ';'-list of migration roles by the thresholds above, in a fixed order."""
    immigrants = dec(row["migrant_stock_2024"]) or Decimal(0)
    emigrants = dec(row["emigrant_stock_2024"]) or Decimal(0)
    remittances = dec(row["remittances_received_usd"])
    gni = dec(row["gni_atlas_usd"])
    origin = (
        emigrants >= ORIGIN_EMIGRANTS_MIN
        or (emigrants >= NET_STOCK_MIN and emigrants >= immigrants)
        or (remittances is not None and gni and remittances / gni >= ORIGIN_REMITTANCE_GNI_MIN)
    )
    destination = immigrants >= DESTINATION_IMMIGRANTS_MIN or (
        immigrants >= NET_STOCK_MIN and immigrants >= emigrants
    )
    found = [
        ("origin", origin),
        ("transit", row["iso3"] in TRANSIT_ILLUSTRATIVE),
        ("destination", destination),
    ]
    return ";".join(name for name, present in found if present)


def gni_absorption(row: Mapping[str, str]) -> Decimal | None:
    """The absorption limit from GNI in whole USD, or None when GNI is missing."""
    gni = dec(row["gni_atlas_usd"])
    if gni is None:
        return None
    return Decimal(usd(max(gni * ABSORPTION_GNI_SHARE, ABSORPTION_MIN_USD)))


def subregion(row: Mapping[str, str]) -> str:
    """The M49 intermediate region where there is one (Eastern Africa), else the sub-region."""
    return row["un_intermediate_region"].strip() or row["un_subregion"].strip()


def median(values: Sequence[Decimal]) -> Decimal:
    """The median, exact (the mean of the middle two for an even count)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def absorption_fallbacks(countries: Sequence[Mapping[str, str]]) -> dict[str, tuple[int, str]]:
    """For each State without GNI: (limit in whole USD, the peer group it came from)."""
    limits = {c["iso3"]: gni_absorption(c) for c in countries}
    found: dict[str, tuple[int, str]] = {}
    for c in countries:
        if limits[c["iso3"]] is not None:
            continue
        group = income_group(c)
        tiers = (("sub-region", lambda o, c=c: subregion(o) == subregion(c)),
                 ("region", lambda o, c=c: o["un_region"] == c["un_region"]),
                 ("income group", lambda o: True))
        for tier, same_place in tiers:
            peers = [limits[o["iso3"]] for o in countries
                     if limits[o["iso3"]] is not None and income_group(o) == group
                     and same_place(o)]
            if peers:
                place = {"sub-region": subregion(c), "region": c["un_region"],
                         "income group": "all regions"}[tier]
                found[c["iso3"]] = (usd(median(peers)),  # type: ignore[arg-type]
                                    f"median of {len(peers)} {group} States, {place}")
                break
    return found


def is_ldc(row: Mapping[str, str]) -> str:
    """The LDC flag as copied, corrected for the graduations the snapshot missed."""
    return "false" if row["iso3"] in LDC_GRADUATED else row["ldc"]


def build_states(countries: Sequence[Mapping[str, str]]) -> list[tuple[str, ...]]:
    """Return states.csv rows, sorted by iso3."""
    fallbacks = absorption_fallbacks(countries)
    rows = []
    for c in countries:
        gni = dec(c["gni_atlas_usd"])
        limit = gni_absorption(c)
        rows.append(
            (
                c["iso3"],
                c["name"],
                c["un_region"],
                income_group(c),
                roles(c),
                is_ldc(c),
                "true" if c["iso3"] in DEBT_DISTRESS_ILLUSTRATIVE else "false",
                str(fallbacks[c["iso3"]][0]) if limit is None else str(limit),
                "" if gni is None else str(usd(gni)),
                str(usd(dec(c["migrant_stock_2024"]) or Decimal(0))),
                "false" if c["iso3"] in NOT_ELIGIBLE else "true",
            )
        )
    return sorted(rows)


def gap_needs(row: Mapping[str, str]) -> dict[str, Decimal]:
    """Return the need in USD per target for one State (before rounding and filtering)."""
    immigrants = dec(row["migrant_stock_2024"]) or Decimal(0)
    emigrants = dec(row["emigrant_stock_2024"]) or Decimal(0)
    needs: dict[str, Decimal] = {}
    for target, cost in UNIT_COSTS.items():
        needs[target] = cost["base"] + cost["immigrant"] * immigrants + cost["emigrant"] * emigrants
    remittances = dec(row["remittances_received_usd"])
    cost_pct = dec(row["remit_cost_inbound_pct"])
    # A 10.c programme only where the data show the target missed; no figure, no gap (no
    # fallback: a State whose price is not surveyed may well meet the target).
    if remittances is not None and cost_pct is not None and cost_pct > SDG_10C_TARGET_PCT:
        needs["10.c"] = min(REMIT_PROGRAMME_BASE_USD + REMIT_PROGRAMME_SHARE * remittances,
                            REMIT_PROGRAMME_CAP_USD)
    return needs


def bank_exclusions(countries: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """`exclude_states` of each bank window: the States in its regions it does not lend to
    (not a borrower, or lending paused), as a sorted ';'-list."""
    category = {c["iso3"]: c["wb_lending_category"].strip() for c in countries}
    africa = {c["iso3"] for c in countries if c["un_region"] == AFDB_REGION}
    lends = {
        "afdb": africa,
        "adb": ADB_BORROWERS - ADB_PAUSED,
        "idb": IDB_BORROWERS - IDB_PAUSED,
        "wb_ibrd": {s for s, k in category.items() if k in IBRD_CATEGORIES} - WB_LENDING_PAUSED,
        "wb_ida": {s for s, k in category.items() if k in IDA_CATEGORIES} - WB_LENDING_PAUSED,
    }
    regions = {row[0]: set(filter(None, row[7].split(";"))) for row in SOURCES}
    found = {}
    for source_id, borrowers in lends.items():
        scope = {c["iso3"] for c in countries
                 if not regions[source_id] or c["un_region"] in regions[source_id]}
        found[source_id] = ";".join(sorted(scope - borrowers))
    return found


def build_sources(countries: Sequence[Mapping[str, str]]) -> list[tuple[str, ...]]:
    """Return the scale-up's sources.csv rows with the banks' exclusions, sorted by id."""
    excluded = bank_exclusions(countries)
    rows = []
    for row in SOURCES:
        if row[0] in excluded:
            row = (*row[:9], excluded[row[0]], *row[10:])
        rows.append(row)
    return sorted(rows)


def build_gaps(countries: Sequence[Mapping[str, str]]) -> list[tuple[str, str, str]]:
    """Return gaps.csv rows (need > 0 only), sorted by iso3 then target as plain strings."""
    rows = []
    for c in countries:
        if income_group(c) not in GAP_INCOME_GROUPS:
            continue
        needs = gap_needs(c)
        for target in TARGETS:
            if target in needs and usd(needs[target]) > 0:
                rows.append((c["iso3"], target, str(usd(needs[target]))))
    # Plain string order, as the SPEC sorts outputs ("10.7" before "8.8").
    return sorted(rows)


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """A UTF-8 CSV with LF line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    """Write a file only when its bytes change (so that its timestamp means something)."""
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def check(
    states: Sequence[tuple[str, ...]],
    gaps: Sequence[tuple[str, str, str]],
    sources: Sequence[tuple[str, ...]],
) -> list[str]:
    """Return violations of the SPEC section 2 contract (an empty list when all is well)."""
    problems: list[str] = []
    iso3s = [s[0] for s in states]
    if len(set(iso3s)) != len(iso3s):
        problems.append("states.csv: duplicate iso3")
    by_iso = {s[0]: s for s in states}
    regions = {s[2] for s in states}
    groups = {"LIC", "LMIC", "UMIC", "HIC"}
    for s in states:
        if not re.fullmatch(r"[A-Z]{3}", s[0]) or not all(s[:4]):
            problems.append(f"states.csv: {s[0]}: bad iso3 or blank required cell")
        if s[3] not in groups:
            problems.append(f"states.csv: {s[0]}: income group {s[3]!r}")
        if s[4] and not set(s[4].split(";")) <= {"origin", "transit", "destination"}:
            problems.append(f"states.csv: {s[0]}: roles {s[4]!r}")
        if any(v not in ("true", "false") for v in (s[5], s[6], s[10])):
            problems.append(f"states.csv: {s[0]}: boolean")
        if any(v and not v.isdigit() for v in (s[7], s[8], s[9])) or not s[7]:
            problems.append(f"states.csv: {s[0]}: number not a plain integer, or no absorption")
    for name, listed in (("transit", TRANSIT_ILLUSTRATIVE),
                         ("debt distress", DEBT_DISTRESS_ILLUSTRATIVE),
                         ("income assumption", set(INCOME_ASSUMED)),
                         ("not eligible", set(NOT_ELIGIBLE)),
                         ("LDC graduation", set(LDC_GRADUATED)),
                         ("ADB borrowers", ADB_BORROWERS),
                         ("IDB borrowers", IDB_BORROWERS)):  # fmt: skip
        if not listed <= by_iso.keys():
            problems.append(f"{name} list names non-members: {sorted(listed - by_iso.keys())}")
    keys = [(g[0], g[1]) for g in gaps]
    if len(set(keys)) != len(keys):
        problems.append("gaps.csv: duplicate (iso3, target)")
    for iso3, target, need in gaps:
        valid = iso3 in by_iso and TARGET_RE.match(target) and need.isdigit() and int(need) > 0
        if not valid:
            problems.append(f"gaps.csv: bad row {iso3},{target},{need}")
    ids = [s[0] for s in sources]
    if len(set(ids)) != len(ids):
        problems.append("sources.csv: duplicate source_id")
    gap_targets = {g[1] for g in gaps}
    for src in sources:
        sid, _, kind, instrument, pledge, ge, tgts, regs, incs, excl, share, donor = src
        if not re.fullmatch(r"[a-z0-9_-]+", sid) or kind not in ("donor", "ifi", "private"):
            problems.append(f"sources.csv: {sid}: id or kind")
        if instrument not in ("grant", "loan") or not pledge.isdigit():
            problems.append(f"sources.csv: {sid}: instrument or pledge")
        if instrument == "loan" and not (ge and 0 <= Decimal(ge) <= 1):
            problems.append(f"sources.csv: {sid}: loan without a grant element in [0,1]")
        if instrument == "grant" and ge not in ("", "1"):
            problems.append(f"sources.csv: {sid}: grant with grant element {ge!r}")
        for t in filter(None, tgts.split(";")):
            if not TARGET_RE.match(t) or t not in gap_targets:
                problems.append(f"sources.csv: {sid}: target earmark {t!r}")
        for r in filter(None, regs.split(";")):
            if r not in regions:
                problems.append(f"sources.csv: {sid}: region earmark {r!r} matches no state")
        for g in filter(None, incs.split(";")):
            if g not in groups:
                problems.append(f"sources.csv: {sid}: income group earmark {g!r}")
        for x in filter(None, excl.split(";")):
            if x not in by_iso:
                problems.append(f"sources.csv: {sid}: excluded state {x!r}")
        if share and not 0 < Decimal(share) <= 1:
            problems.append(f"sources.csv: {sid}: max_state_share {share!r}")
        if donor and donor not in by_iso:
            problems.append(f"sources.csv: {sid}: donor_iso3 {donor!r} not in states.csv")
    return problems


def summary(
    states: Sequence[tuple[str, ...]],
    gaps: Sequence[tuple[str, str, str]],
    sources: Sequence[tuple[str, ...]],
    fallbacks: Mapping[str, tuple[int, str]],
) -> str:
    """Return the summary figures quoted in inputs/README.md."""
    group = {s[0]: s[3] for s in states}
    need = sum(int(g[2]) for g in gaps)
    fundable = sum((BASELINE_COFINANCING[group[g[0]]] * int(g[2]) for g in gaps), Decimal(0))
    pledges = sum(int(s[4]) for s in sources)
    lines = [
        f"states: {len(states)}",
        "states by income group: "
        + ", ".join(f"{g} {sum(1 for s in states if s[3] == g)}" for g in BASELINE_COFINANCING),
        f"states with gaps: {len({g[0] for g in gaps})}",
        f"gaps: {len(gaps)}",
        f"sources: {len(sources)}",
        f"total need (USD): {need}",
        f"total fundable need under baseline cofinancing (USD): {usd(fundable)}",
        f"total pledges (USD): {pledges}",
        f"fundable need / pledges: {fundable / pledges:.2f}",
        f"loans: {sum(int(s[4]) for s in sources if s[3] == 'loan')} USD",
    ]
    lines += [f"absorption fallback {iso3}: {limit} USD ({why})"
              for iso3, (limit, why) in sorted(fallbacks.items())]
    for target in TARGETS:
        rows = [int(g[2]) for g in gaps if g[1] == target]
        lines.append(
            f"  {target}: {len(rows)} gaps, need {sum(rows)} USD, min {min(rows)}, max {max(rows)}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "data", nargs="?", type=Path, default=DEFAULT_DATA,
        help=f"folder with countries.csv, or the file itself (default: {DEFAULT_DATA})",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--scenario-out", type=Path, default=DEFAULT_SCENARIO_OUT,
                        help="output folder of the MPTF-scale scenario")
    args = parser.parse_args(argv)
    countries_csv = args.data if args.data.is_file() else args.data / "countries.csv"

    countries = read_countries(countries_csv)
    states = build_states(countries)
    gaps = build_gaps(countries)
    sources = build_sources(countries)
    mptf_sources = sorted(MPTF_SCALE_SOURCES)
    problems = check(states, gaps, sources) + check(states, gaps, mptf_sources)
    africa = sum(1 for c in countries if c["un_region"] == AFDB_REGION)
    if africa != 54:
        problems.append(f"AfDB has 54 regional members, the M49 region Africa {africa}")
    if sum(int(row[4]) for row in mptf_sources) != MPTF_CAPITALISATION_USD or any(
            row[3] != "grant" for row in mptf_sources):
        problems.append("the MPTF-scale scenario is not USD 70 million of grants")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1

    states_csv = csv_bytes(STATES_HEADER, states)
    gaps_csv = csv_bytes(GAPS_HEADER, gaps)
    for folder, rows, meta in ((args.out, sources, META_SCALE_UP),
                               (args.scenario_out, mptf_sources, META_MPTF_SCALE)):
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes(folder / "states.csv", states_csv)
        write_bytes(folder / "gaps.csv", gaps_csv)
        write_bytes(folder / "sources.csv", csv_bytes(SOURCES_HEADER, rows))
        write_bytes(folder / "meta.toml", meta.encode("utf-8"))
    print(summary(states, gaps, sources, absorption_fallbacks(countries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
