"""Build the bundled example inputs of gcm_fund from the shared country data.

Reads ``countries.csv`` (see ``shared/data/PROVENANCE.md``) and writes two input folders in
the format of SPEC section 2, with the same States and gaps and different sources:

- ``inputs/`` (the bundled example; a HYPOTHETICAL SCALE-UP): ``states.csv`` (the 193 UN
  member States, with region, income group, migration roles, LDC, the World Bank-IMF LIC
  DSF risk of debt distress, eligibility, an absorption limit, GNI and migrants hosted),
  ``gaps.csv`` (capacity gaps, USD per year, for six migration-related SDG targets, for
  low- and middle-income States only, each counted once, in the State that runs the
  programme), ``sources.csv`` (illustrative pledges of USD 2,015 million for one year, 57 %
  loans from development-bank windows) and ``meta.toml`` (``illustrative = true``);
- ``scenarios/mptf_scale/``: the same States and gaps with about USD 70 million of grants
  only, the capitalisation target of the UN Migration Multi-Partner Trust Fund read as one
  year's money: the scale pooled migration funds actually have. Norway's announced NOK 15
  million (``migration_mptf_contributions.csv``) and Germany's illustrative money are
  stated in ``contributions.csv`` with a published NOK rate in ``fx.csv`` (SPEC section 9).

Time base: needs are USD per year and pledges are one year's money, so coverage compares a
year's money with a year's need.

Published figures (names, regions, income groups, LDC status, migrant stocks, remittances,
remittance costs, GNI, and the debt-risk ratings of a dated public list cited below) are
copied from the data. Everything else (role thresholds, the transit list, the absorption
rule, the fallback for missing figures, unit costs and every pledge) is an ASSUMPTION or
ILLUSTRATIVE and is marked so below and in ``inputs/README.md``.

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
from decimal import ROUND_HALF_UP, Context, Decimal
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

# Risk of external debt distress from the joint World Bank-IMF Debt Sustainability Framework
# for Low-Income Countries (LIC DSF): the IMF's "List of LIC DSAs for PRGT-Eligible
# Countries" (https://www.imf.org/external/Pubs/ft/dsa/DSAlist.pdf), the edition current on
# 13 April 2026 (its latest entry is dated 31 March 2026), as transcribed in
# ONEcampaign/debt_overview output/chart_5_download.csv at commit
# 969deb9c4b4ccd13f2101a38d284ffb7d0b556df (key_stats.json there: last_data_update
# "13 April 2026"). Values: iso3 -> (rating, publication date of the State's latest DSA).
# The 67 States on the list are rated; every other State is not (blank `debt_risk`): the LIC
# DSF covers PRGT-eligible countries only. Ratings are copied as published, stale ones too
# (inputs/README.md names the DSAs older than three years).
DEBT_RISK_LIC_DSA: dict[str, tuple[str, str]] = {
    "AFG": ("high", "2021-06-28"), "BGD": ("moderate", "2026-01-30"),
    "BEN": ("moderate", "2025-07-14"), "BTN": ("moderate", "2026-01-27"),
    "BFA": ("moderate", "2026-03-23"), "BDI": ("high", "2023-07-25"),
    "KHM": ("low", "2025-12-02"), "CMR": ("high", "2025-03-24"),
    "CPV": ("moderate", "2026-02-26"), "CAF": ("high", "2025-06-23"),
    "TCD": ("high", "2025-08-13"), "COM": ("high", "2026-02-19"),
    "COD": ("moderate", "2025-07-16"), "COG": ("distress", "2025-03-24"),
    "CIV": ("moderate", "2026-02-11"), "DJI": ("distress", "2025-09-22"),
    "DMA": ("moderate", "2025-06-12"), "ETH": ("distress", "2026-01-30"),
    "GMB": ("high", "2025-12-23"), "GHA": ("high", "2025-12-22"),
    "GRD": ("distress", "2025-02-04"), "GIN": ("moderate", "2024-05-17"),
    "GNB": ("high", "2025-07-07"), "HTI": ("high", "2024-12-10"),
    "HND": ("low", "2024-12-10"), "KEN": ("high", "2024-11-01"),
    "KIR": ("high", "2025-07-10"), "KGZ": ("moderate", "2025-06-04"),
    "LAO": ("distress", "2026-02-20"), "LSO": ("moderate", "2025-09-18"),
    "LBR": ("moderate", "2025-11-07"), "MDG": ("moderate", "2025-03-21"),
    "MWI": ("distress", "2025-08-06"), "MDV": ("high", "2024-05-13"),
    "MLI": ("moderate", "2025-09-10"), "MHL": ("moderate", "2025-12-04"),
    "MRT": ("moderate", "2026-02-05"), "FSM": ("moderate", "2024-03-04"),
    "MDA": ("low", "2026-03-05"), "MOZ": ("high", "2026-02-19"),
    "MMR": ("low", "2021-01-28"), "NPL": ("low", "2025-10-06"),
    "NIC": ("moderate", "2026-01-26"), "NER": ("high", "2026-03-31"),
    "PNG": ("high", "2025-06-18"), "RWA": ("moderate", "2025-12-04"),
    "WSM": ("moderate", "2025-01-31"), "STP": ("distress", "2025-12-23"),
    "SEN": ("moderate", "2023-07-07"), "SLE": ("high", "2026-02-13"),
    "SLB": ("low", "2025-02-25"), "SOM": ("moderate", "2025-12-16"),
    "SSD": ("high", "2024-06-10"), "VCT": ("high", "2024-07-22"),
    "SDN": ("distress", "2021-07-01"), "TJK": ("high", "2025-07-08"),
    "TZA": ("moderate", "2025-07-03"), "TLS": ("moderate", "2025-09-26"),
    "TGO": ("moderate", "2025-07-11"), "TON": ("high", "2025-11-10"),
    "TUV": ("high", "2025-09-12"), "UGA": ("moderate", "2026-02-03"),
    "UZB": ("low", "2025-06-24"), "VUT": ("moderate", "2025-09-25"),
    "YEM": ("moderate", "2014-09-24"), "ZMB": ("high", "2026-02-02"),
    "ZWE": ("distress", "2025-10-02"),
}  # fmt: skip
DEBT_RISK_LIST_DATE = "2026-04-13"
DEBT_RISK_STALE_BEFORE = "2023-04-13"  # a DSA over three years older than the list: flagged
DEBT_RISKS = ("low", "moderate", "high", "distress")

# ASSUMPTION (illustrative): a State can absorb at most 0.5 % of its GNI per year from the
# fund for all targets together (a stand-in for implementation capacity), and never less
# than USD 1 million (so that small States are not shut out). A missing GNI takes the
# FALLBACK of every missing input (MISSING_DATA_RULE below), for States with a gap only: a
# State without a gap (LIE, MCO: high income) gets no variable, so its cell stays blank rather
# than hold an invented limit (a median of Germany and France gave Monaco USD 4.33 billion).
ABSORPTION_GNI_SHARE = Decimal("0.005")
ABSORPTION_MIN_USD = Decimal("1000000")

# CORRECTION of a stale value: the M49 snapshot of Sept 2024 still flags Sao Tome and
# Principe as an LDC. It graduated from the LDC category on 13 December 2024 (UN-OHRLLS and
# the UN DESA LDC portal list it as graduated).
LDC_GRADUATED = {"STP": "2024-12-13"}

# ELIGIBILITY (states.csv `eligible = false`): States the fund cannot pay, from named lists.
# - PRK: under the UN Security Council sanctions regime of resolution 1718 (2006) and its
#   successors (the 1718 Committee), which bar financial support to the State.
# Unilateral sanctions (for example on Cuba or Iran) are not applied: a multilateral fund's
# eligibility is set by its members, and one member's measures are not that list.
NOT_ELIGIBLE = {"PRK": "UN Security Council resolution 1718 (2006) sanctions"}

# CHANNELLED THROUGH UN ORGANISATIONS (eligible, grants only): AFG and MMR have no government
# recognised at the UN (the General Assembly has deferred both credentials decisions at every
# session since its 76th, December 2021), so nothing is paid to a government; the fund pays UN
# organisations that run the programmes, as other funds did: the Global Fund's USD 15 million
# to Afghanistan's health facilities through UNDP (agreement of 20 September 2021; UNDP has
# been its interim Principal Recipient there since 2015), ADB's USD 405 million of grants to
# four UN agencies (25 January 2022) and USD 400 million to three (20 September 2023). The UN
# Migration MPTF itself transfers its money to participating UN organisations. No loan: no
# counterpart can borrow, and every bank window has paused lending to both (see below).
UN_CHANNELLED = {"AFG": "UN credentials deferred since Dec 2021; paid through UN organisations",
                 "MMR": "UN credentials deferred since Dec 2021; paid through UN organisations"}

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

# MISSING DATA, the same FALLBACK for every figure the build derives from the data (the
# absorption limit, the 10.c programme): a State whose inputs to the figure are missing gets
# the median of the same figure among its peers that have the inputs: the States of the same
# income group in its M49 sub-region (intermediate region where M49 has one), else in its UN
# region, else in the whole income group, taking the first with at least MIN_PEERS States
# (a "median" of one neighbour is that neighbour's figure, not a peer group's). The figure
# is labelled FALLBACK in inputs/README.md with its peer group. "No figure, no gap" would
# treat an unsurveyed market as meeting the target, and "no figure, no limit" would give the
# least documented States the most room.
MISSING_DATA_RULE = "median of the same figure among peers (sub-region, region, income group)"
MIN_PEERS = 3

# SDG 10.c: reduce to less than 3 % the transaction costs of migrant remittances. Lowering
# prices is regulatory and market work, so the 10.c gap is the cost of a capacity programme a
# fund can pay for, not the fees paid above 3 %: for each remittance market where the data
# show the target missed (inbound cost above 3 %), a fixed programme (a market diagnostic,
# proportionate licensing and supervision of remittance providers, their access to the
# national payment system, a price-comparison database) plus a part that grows with the
# market's size, up to a cap; a market at or below 3 % has a figure of 0 (no gap). The
# receiving State runs it (the market is its own), so the need is counted there only.
# ASSUMPTION: the three figures are round numbers for the example, not a published costing.
SDG_10C_TARGET_PCT = Decimal("3")
REMIT_PROGRAMME_BASE_USD = Decimal("500000")
REMIT_PROGRAMME_SHARE = Decimal("0.0001")  # 1 basis point of yearly remittances received
REMIT_PROGRAMME_CAP_USD = Decimal("5000000")

# Who runs the programme, so that each need is counted once. A programme for people runs
# where they live: the host State. UN DESA's stocks count every migrant twice (as an
# immigrant where they live, as an emigrant of their origin), so the per-person part of each
# target counts IMMIGRANTS ONLY, in the host State; emigrants add nothing to their origin's
# need (Syria's and Ukraine's emigrant stocks are mostly refugees whose protection the host
# States provide, and the data cannot tell labour emigrants from refugees). What an origin
# State runs for its nationals abroad (pre-departure orientation, recruitment regulation,
# consular and reintegration services) is in each target's fixed part, and its remittance
# market in 10.c.
# Population shares (published, global): women and girls are 48 % of international migrants
# (UN DESA Population Division, International Migration 2020 Highlights, ST/ESA/SER.A/452);
# children under 18 are 36 of the 281 million international migrants of 2020, 12.8 % (UNICEF
# Data, "Child migration", from UN DESA International Migrant Stock 2020). The data hold no
# sex or age breakdown by State, so both shares are flat: 5.2 and 16.2 differ in who is served
# and at what unit cost, and both stay proportional to the immigrant stock across States.
WOMEN_AND_GIRLS_SHARE = Decimal("0.48")
CHILDREN_SHARE = Decimal("0.128")

# ILLUSTRATIVE unit costs, USD per year, flat across States. They are NOT a published
# costing; they only give each target a need that scales with the real stocks, USD 66 per
# immigrant per year over the five targets, and all needs together two to three times the
# scale-up's pledges (money is scarce, as in every pooled migration fund). Keys: "base"
# per State (a fixed programme cost, so that small States do not get needs of a few thousand
# USD), "per_person" per person served, "share" the share of the immigrant stock served.
UNIT_COSTS: dict[str, dict[str, Decimal]] = {
    # 10.7 well-managed migration policies: running migration governance (data, policy,
    # admission and documentation), USD 10 per immigrant.
    "10.7": {"base": Decimal("1000000"), "per_person": Decimal("10"), "share": Decimal("1")},
    # 8.8 labour rights of migrant workers: labour inspection and redress where migrants
    # work, USD 30 per immigrant.
    "8.8": {"base": Decimal("250000"), "per_person": Decimal("30"), "share": Decimal("1")},
    # 8.7 forced labour and trafficking: identification of victims and their support,
    # USD 10 per immigrant.
    "8.7": {"base": Decimal("250000"), "per_person": Decimal("10"), "share": Decimal("1")},
    # 5.2 violence against women and girls: gender-based-violence prevention and response
    # services for migrant women and girls, USD 20 per migrant woman or girl.
    "5.2": {"base": Decimal("250000"), "per_person": Decimal("20"),
            "share": WOMEN_AND_GIRLS_SHARE},
    # 16.2 abuse, exploitation, trafficking of children: child protection (case management,
    # guardianship of unaccompanied children), USD 50 per migrant child.
    "16.2": {"base": Decimal("250000"), "per_person": Decimal("50"), "share": CHILDREN_SHARE},
}  # fmt: skip
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
    ("deu", "Germany grant (illustrative contributions, MPTF scale)", "donor", "grant", "",
     "1", "", "", "", "", "", "DEU"),
    ("usa", "United States grant (illustrative pledge, MPTF scale)", "donor", "grant",
     "17000000", "1", "10.7;8.7;16.2", "", "", "", "", "USA"),
    ("gbr", "United Kingdom grant (illustrative pledge, MPTF scale)", "donor", "grant",
     "11500000", "1", "8.7;5.2;16.2", "", "", "", "", "GBR"),
    ("nld", "Netherlands grant (illustrative pledge, MPTF scale)", "donor", "grant", "6500000",
     "1", "", "", "", "", "", "NLD"),
    ("nor", "Norway grant (announced NOK 15 million, MPTF scale)", "donor", "grant", "",
     "1", "8.7;5.2;16.2", "", "", "", "", "NOR"),
    ("dnk", "Denmark grant (illustrative pledge, MPTF scale)", "donor", "grant", "3500000",
     "1", "", "Africa", "", "", "", "DNK"),
    ("esp", "Spain grant (illustrative pledge, MPTF scale)", "donor", "grant", "3000000",
     "1", "", "Africa;Americas", "", "", "", "ESP"),
    ("mar", "Morocco grant (illustrative pledge, MPTF scale)", "donor", "grant", "500000",
     "1", "", "Africa", "", "", "", "MAR"),
)  # fmt: skip
MPTF_CAPITALISATION_USD = 70_000_000

# SPEC 9, at the MPTF scale: the contributions of the sources with a blank pledge_usd above.
# Norway's row is its announcement in the shared data (NOK 15 million, an announcement, so
# `pledged`); the page shows no date, so the row is dated at the valuation date (an
# ASSUMPTION). Germany's USD 24 million, split into paid and signed with their dates, is
# ILLUSTRATIVE. Rows: (source_id, currency, amount, status, date).
MPTF_VALUATION_DATE = "2024-02-05"  # models/*.toml [pledges] valuation_date
MPTF_CONTRIBUTIONS_ILLUSTRATIVE: tuple[tuple[str, str, str, str, str], ...] = (
    ("deu", "USD", "16000000", "paid", "2023-06-30"),
    ("deu", "USD", "8000000", "signed", "2023-12-15"),
)
MPTF_ANNOUNCED_STATUS = "pledged"
MPTF_ANNOUNCED_DATE = MPTF_VALUATION_DATE
# Published NOK rates: the Federal Reserve Board's H.10 weekly release, in NOK per USD
# (the release quotes the krone per dollar); fx.csv holds USD per NOK, 1 / rate to 10
# significant digits. (currency, date, NOK per USD, source)
FX_PUBLISHED: tuple[tuple[str, str, str, str], ...] = (
    ("NOK", "2023-03-03", "10.4191", "Federal Reserve Board, H.10 Foreign Exchange Rates, "
     "weekly release of 6 March 2023: NOK 10.4191 per USD on 3 March 2023"),
    ("NOK", "2024-02-02", "10.6235", "Federal Reserve Board, H.10 Foreign Exchange Rates, "
     "weekly release of 5 February 2024: NOK 10.6235 per USD on 2 February 2024"),
)
CONTRIBUTIONS_HEADER = ("source_id", "currency", "amount", "status", "date")
FX_HEADER = ("currency", "date", "usd_per_unit", "source")

# TIME BASE: every need is USD per year, and every pledge is one year's money (one yearly
# allocation round), so coverage compares a year's money with a year's need.
META_SCALE_UP = (
    "illustrative = true\n"
    'description = "Hypothetical scale-up: USD 2,015 million of invented pledges for one '
    'year (57 % development-bank loans) against yearly needs, on public country data; unit '
    'costs and pledges are assumptions, see inputs/README.md."\n'
)
META_MPTF_SCALE = (
    "illustrative = true\n"
    'description = "The fund at the UN Migration MPTF\'s scale: grants read as one year\'s '
    'money against yearly needs, an invented split of USD 66 million among its named '
    'contributors and Norway\'s announced NOK 15 million at a published rate, on public '
    'country data; see inputs/README.md."\n'
)

STATES_HEADER = ("iso3", "name", "region", "income_group", "roles", "ldc", "debt_distress",
                 "debt_risk", "absorption_usd", "gni_usd", "migrants_hosted",
                 "eligible")  # fmt: skip
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


def peer_fallback(countries: Sequence[Mapping[str, str]], row: Mapping[str, str],
                  figures: Mapping[str, Decimal | None]) -> tuple[Decimal, str]:
    """MISSING_DATA_RULE for `row`: the median of `figures` (by iso3, None where a State's
    inputs are missing) among its peers, and the peer group it came from."""
    group = income_group(row)
    tiers = (("sub-region", lambda o: subregion(o) == subregion(row), subregion(row)),
             ("region", lambda o: o["un_region"] == row["un_region"], row["un_region"]),
             ("income group", lambda o: True, "all regions"))
    for _, same_place, place in tiers:
        peers = [figure for o in countries
                 if (figure := figures[o["iso3"]]) is not None and income_group(o) == group
                 and same_place(o)]
        if len(peers) >= MIN_PEERS:
            return median(peers), f"median of {len(peers)} {group} States, {place}"
    raise SystemExit(f"{row['iso3']}: no peer has the figure, so no fallback")


def has_gaps(row: Mapping[str, str]) -> bool:
    """Whether the State is in an income group with gaps (HIC States have none)."""
    return income_group(row) in GAP_INCOME_GROUPS


def absorption_fallbacks(countries: Sequence[Mapping[str, str]]) -> dict[str, tuple[int, str]]:
    """For each State with gaps and without GNI: (limit in whole USD, its peer group)."""
    limits = {c["iso3"]: gni_absorption(c) for c in countries}
    found = {}
    for c in countries:
        if limits[c["iso3"]] is None and has_gaps(c):
            limit, why = peer_fallback(countries, c, limits)
            found[c["iso3"]] = (usd(limit), why)
    return found


def remit_programme(row: Mapping[str, str]) -> Decimal | None:
    """The 10.c programme cost in USD per year: 0 where the inbound cost meets the target,
    None where the remittances or the cost are missing."""
    remittances = dec(row["remittances_received_usd"])
    cost_pct = dec(row["remit_cost_inbound_pct"])
    if remittances is None or cost_pct is None:
        return None
    if cost_pct <= SDG_10C_TARGET_PCT:
        return Decimal(0)
    return min(REMIT_PROGRAMME_BASE_USD + REMIT_PROGRAMME_SHARE * remittances,
               REMIT_PROGRAMME_CAP_USD)


def remit_fallbacks(countries: Sequence[Mapping[str, str]]) -> dict[str, tuple[int, str]]:
    """For each State with gaps and a missing 10.c input: (programme cost, its peer group);
    a cost of 0 (most peers meet the target) means no 10.c gap."""
    figures = {c["iso3"]: remit_programme(c) for c in countries}
    found = {}
    for c in countries:
        if figures[c["iso3"]] is None and has_gaps(c):
            cost, why = peer_fallback(countries, c, figures)
            found[c["iso3"]] = (usd(cost), why)
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
        risk = DEBT_RISK_LIC_DSA.get(c["iso3"], ("", ""))[0]
        if limit is not None:
            absorption = str(limit)
        elif c["iso3"] in fallbacks:
            absorption = str(fallbacks[c["iso3"]][0])
        else:
            absorption = ""  # no gap, so no limit is needed
        rows.append(
            (
                c["iso3"],
                c["name"],
                c["un_region"],
                income_group(c),
                roles(c),
                is_ldc(c),
                "true" if risk == "distress" else "false",
                risk,
                absorption,
                "" if gni is None else str(usd(gni)),
                str(usd(dec(c["migrant_stock_2024"]) or Decimal(0))),
                "false" if c["iso3"] in NOT_ELIGIBLE else "true",
            )
        )
    return sorted(rows)


def gap_needs(row: Mapping[str, str], remit_fallback: int | None) -> dict[str, Decimal]:
    """Return the need in USD per year per target for one State (before rounding and
    filtering); `remit_fallback` is its 10.c FALLBACK when its own inputs are missing."""
    immigrants = dec(row["migrant_stock_2024"]) or Decimal(0)
    needs: dict[str, Decimal] = {}
    for target, cost in UNIT_COSTS.items():
        needs[target] = cost["base"] + cost["per_person"] * cost["share"] * immigrants
    programme = remit_programme(row)
    if programme is None and remit_fallback is not None:
        programme = Decimal(remit_fallback)
    if programme:
        needs["10.c"] = programme
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


def read_announced(path: Path) -> list[tuple[str, str, str, str, str]]:
    """The contributions with an amount in migration_mptf_contributions.csv (Norway's NOK
    15 million), as contributions.csv rows of the MPTF scale's sources."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["amount"].strip()]
    ids = {s[11]: s[0] for s in MPTF_SCALE_SOURCES}
    return [(ids[r["donor_iso3"]], r["currency"], r["amount"], MPTF_ANNOUNCED_STATUS,
             MPTF_ANNOUNCED_DATE) for r in rows]


def build_contributions(announced: Sequence[tuple[str, str, str, str, str]]
                        ) -> list[tuple[str, ...]]:
    """contributions.csv of the MPTF scale, rows sorted as plain tuples (source_id first)."""
    return sorted((*announced, *MPTF_CONTRIBUTIONS_ILLUSTRATIVE))


def build_fx() -> list[tuple[str, str, str, str]]:
    """fx.csv: each published rate as USD per unit, 1 / (units per USD) to 10 digits."""
    ten = Context(prec=10)
    return sorted((currency, day, str(ten.divide(Decimal(1), Decimal(per_usd))), source)
                  for currency, day, per_usd, source in FX_PUBLISHED)


def check_contributions(sources: Sequence[tuple[str, ...]],
                        contributions: Sequence[tuple[str, ...]]) -> list[str]:
    """SPEC 9 on the MPTF scale: a source with rows has a blank pledge, one without a
    pledge; every currency other than USD has a rate on or before the valuation date; the
    USD pledges and Germany's contributions make USD 66 million besides Norway's NOK."""
    problems = []
    with_rows = {c[0] for c in contributions}
    for src in sources:
        if (src[0] in with_rows) != (src[4] == ""):
            problems.append(f"sources.csv: {src[0]}: pledge_usd beside contributions, or "
                            "neither")
    rated = {r[0] for r in build_fx() if r[1] <= MPTF_VALUATION_DATE}
    for c in contributions:
        if c[1] != "USD" and c[1] not in rated:
            problems.append(f"contributions.csv: {c[0]}: no {c[1]} rate by the valuation date")
    usd = sum(int(s[4]) for s in sources if s[4]) + sum(
        int(c[2]) for c in contributions if c[1] == "USD")
    if usd != MPTF_CAPITALISATION_USD - 4_000_000:
        problems.append(f"the MPTF scale has USD {usd} besides Norway's NOK, not 66 million")
    return problems


def build_gaps(countries: Sequence[Mapping[str, str]]) -> list[tuple[str, str, str]]:
    """Return gaps.csv rows (need > 0 only), sorted by iso3 then target as plain strings."""
    fallbacks = remit_fallbacks(countries)
    rows = []
    for c in countries:
        if not has_gaps(c):
            continue
        needs = gap_needs(c, fallbacks.get(c["iso3"], (None, ""))[0])
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
        if any(v not in ("true", "false") for v in (s[5], s[6], s[11])):
            problems.append(f"states.csv: {s[0]}: boolean")
        if s[7] and s[7] not in DEBT_RISKS or (s[6] == "true") != (s[7] == "distress"):
            problems.append(f"states.csv: {s[0]}: debt_risk {s[7]!r} beside debt_distress {s[6]}")
        if any(v and not v.isdigit() for v in (s[8], s[9], s[10])):
            problems.append(f"states.csv: {s[0]}: number not a plain integer")
        if not s[8] and s[3] in GAP_INCOME_GROUPS:
            problems.append(f"states.csv: {s[0]}: a State with gaps has no absorption limit")
    for name, listed in (("transit", TRANSIT_ILLUSTRATIVE),
                         ("debt risk", set(DEBT_RISK_LIC_DSA)),
                         ("income assumption", set(INCOME_ASSUMED)),
                         ("not eligible", set(NOT_ELIGIBLE)),
                         ("UN-channelled", set(UN_CHANNELLED)),
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
        if instrument not in ("grant", "loan") or not (pledge.isdigit() or pledge == ""):
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
        # No loan to a State paid through UN organisations: every loan window excludes it.
        reaches = {i for i in by_iso if (not regs or by_iso[i][2] in regs.split(";"))
                   and (not incs or by_iso[i][3] in incs.split(";"))}
        if instrument == "loan" and (reaches & set(UN_CHANNELLED)) - set(excl.split(";")):
            problems.append(f"sources.csv: {sid}: a loan window reaches a UN-channelled State")
    return problems


def group_of_gaps(gaps: Sequence[tuple[str, str, str]]) -> list[str]:
    """The States with at least one gap, sorted."""
    return sorted({g[0] for g in gaps})


def summary(
    states: Sequence[tuple[str, ...]],
    gaps: Sequence[tuple[str, str, str]],
    sources: Sequence[tuple[str, ...]],
    fallbacks: Mapping[str, tuple[int, str]],
    remit: Mapping[str, tuple[int, str]],
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
    lines.append(f"10.c fallbacks: {len(remit)} States, {sum(1 for v, _ in remit.values() if v)}"
                 " with a gap")
    lines += [f"10.c fallback {iso3}: {cost} USD ({why})"
              for iso3, (cost, why) in sorted(remit.items())]
    for risk in DEBT_RISKS:
        rated = sorted(s[0] for s in states if s[7] == risk)
        lines.append(f"debt risk {risk}: {len(rated)} States, with gaps "
                     f"{len(set(rated) & set(group_of_gaps(gaps)))}: {' '.join(rated)}")
    stale = sorted(i for i, (_, day) in DEBT_RISK_LIC_DSA.items() if day < DEBT_RISK_STALE_BEFORE)
    lines.append(f"debt risk from a DSA before {DEBT_RISK_STALE_BEFORE}: {' '.join(stale)}")
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
    data_dir = countries_csv.parent
    contributions = build_contributions(
        read_announced(data_dir / "migration_mptf_contributions.csv"))
    problems = check(states, gaps, sources) + check(states, gaps, mptf_sources)
    problems += check_contributions(mptf_sources, contributions)
    if any(not s[4] for s in sources):
        problems.append("the scale-up has a blank pledge_usd")
    africa = sum(1 for c in countries if c["un_region"] == AFDB_REGION)
    if africa != 54:
        problems.append(f"AfDB has 54 regional members, the M49 region Africa {africa}")
    if any(row[3] != "grant" for row in mptf_sources):
        problems.append("the MPTF-scale scenario is not grants only")
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
    write_bytes(args.scenario_out / "contributions.csv",
                csv_bytes(CONTRIBUTIONS_HEADER, contributions))
    write_bytes(args.scenario_out / "fx.csv", csv_bytes(FX_HEADER, build_fx()))
    print(summary(states, gaps, sources, absorption_fallbacks(countries),
                  remit_fallbacks(countries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
