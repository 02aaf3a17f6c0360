"""Build `scenarios/cycles/`: the fund at the Migration MPTF's scale over three rounds, with
an ILLUSTRATIVE implementation record between them (docs/review.md).

From `scenarios/mptf_scale` (its States, gaps, sources, contributions and rates) and
`models/baseline.toml` with the cycle tables of docs/cycles.md added:

1. round 1 allocates (`round1/`, no history; `round1.toml`, `[cycle] number = 1`);
2. `record` writes its allocation into `history.csv` as cycle 1, and the implementation
   record is filled in by the rule below;
3. round 2 allocates from that history with carry-over and performance (`round2/` holds
   it as `history.csv`; `round2.toml`), is recorded as cycle 2 and filled in the same way;
4. round 3's folder (`round3/`) holds both cycles, for `allocate` and `review`.

The implementation record is INVENTED, deterministically: for each cycle and State, its
execution (disbursed / committed) is its income group's base (LIC 0.55, LMIC 0.70, UMIC
0.80, HIC 0.85) plus a draw in [-0.25, +0.15], and its result (share of planned outputs
delivered) its group's base (LIC 0.60, LMIC 0.70, UMIC 0.75, HIC 0.80) plus a draw in
[-0.30, +0.20], both clipped to [0, 1]; one gap in eight reports no result. The draws come
from `random.Random(f"{SEED}:{cycle}:{iso3}")`, so a State's figures depend on nothing
else and the script writes byte-identical files every time.

    .venv/bin/python scripts/build_cycles.py          # needs gcm_fund installed
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "scenarios" / "mptf_scale"
SCENARIO = ROOT / "scenarios" / "cycles"
FILES = ("states.csv", "gaps.csv", "sources.csv", "contributions.csv", "fx.csv")
SEED = 2024
EXECUTION = {"LIC": 0.55, "LMIC": 0.70, "UMIC": 0.80, "HIC": 0.85}
RESULTS = {"LIC": 0.60, "LMIC": 0.70, "UMIC": 0.75, "HIC": 0.80}
NOT_REPORTED = 8  # one gap in this many reports no result
META = (
    "illustrative = true\n"
    'description = "Three rounds of the fund at the UN Migration MPTF\'s scale '
    "(scenarios/mptf_scale: invented pledges beside Norway's announced NOK 15 million) with "
    "an INVENTED implementation record between them: disbursements and results drawn by "
    "income group with a fixed seed (scripts/build_cycles.py), not reported by any "
    'implementer; see scenarios/cycles/README.md."\n')
CYCLE_TABLES = """
# docs/cycles.md: this round's number, and how it learns from the last ones.
[cycle]
number = {number}

[performance]
alpha = 0.5
beta = 0.5
min_factor = 0.8
max_factor = 1.2
window = 2

[carryover]
undisbursed = "keep"

[pacing]
max_cut = 0.5
max_rise = 1.0
"""


def policy_text(number: int) -> str:
    """models/baseline.toml named for the round, with the cycle tables."""
    text = (ROOT / "models" / "baseline.toml").read_text(encoding="utf-8")
    assert text.count('name = "baseline"') == 1
    text = text.replace('name = "baseline"', f'name = "cycles round {number}"')
    return text + CYCLE_TABLES.format(number=number)


def filled(history: str, cycle: int, income: dict[str, str]) -> str:
    """The history text with cycle `cycle`'s disbursements and results filled in by the
    module's rule; every other row as it was."""
    rows = list(csv.reader(io.StringIO(history)))
    header, body = rows[0], rows[1:]
    draws: dict[str, tuple[float, float, random.Random]] = {}
    for row in body:
        if int(row[0]) != cycle:
            continue
        iso3 = row[1]
        if iso3 not in draws:
            rng = random.Random(f"{SEED}:{cycle}:{iso3}")
            group = income[iso3]
            execution = min(1.0, max(0.0, EXECUTION[group] + rng.uniform(-0.25, 0.15)))
            result = min(1.0, max(0.0, RESULTS[group] + rng.uniform(-0.30, 0.20)))
            draws[iso3] = (execution, result, rng)
        execution, result, rng = draws[iso3]
        committed = float(row[3])
        row[4] = f"{min(committed, round(committed * execution, 2)):.2f}"
        reported = rng.randrange(NOT_REPORTED) != 0
        row[5] = f"{result:.2f}" if reported else ""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *body])
    return out.getvalue()


def round_folder(number: int, history: str | None) -> Path:
    """`scenarios/cycles/roundN/`: the inputs, and the history so far when there is one."""
    folder = SCENARIO / f"round{number}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in FILES:
        shutil.copyfile(SOURCE / name, folder / name)
    (folder / "meta.toml").write_text(META, encoding="utf-8")
    if history is not None:
        (folder / "history.csv").write_text(history, encoding="utf-8")
    return folder


def main() -> None:
    """Allocate rounds 1 and 2, record and fill each in, and write the three folders."""
    from gcm_fund import api

    with open(SOURCE / "states.csv", newline="", encoding="utf-8") as handle:
        income = {row["iso3"]: row["income_group"] for row in csv.DictReader(handle)}
    SCENARIO.mkdir(parents=True, exist_ok=True)
    for number in (1, 2, 3):
        (SCENARIO / f"round{number}.toml").write_text(policy_text(number), encoding="utf-8")
    history: str | None = None
    with tempfile.TemporaryDirectory() as work:
        books = Path(work) / "history.csv"
        for number in (1, 2):
            folder = round_folder(number, history)
            run = api.allocate(folder, SCENARIO / f"round{number}.toml",
                               out=Path(work) / f"run{number}")
            assert run.folder is not None
            done = api.record(run.folder, number, books)
            history = filled(books.read_text(encoding="utf-8"), number, income)
            books.write_text(history, encoding="utf-8")
            print(f"round {number}: run {run.run_id}, {done.rows} gaps, USD "
                  f"{done.committed_usd:,.2f} committed; implementation filled in")
    round_folder(3, history)
    print(f"round 3: {SCENARIO / 'round3'} holds cycles 1 and 2", file=sys.stderr)


if __name__ == "__main__":
    main()
