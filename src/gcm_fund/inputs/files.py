"""Every input file a folder may hold, declared once: the required ones (inputs/schema.py)
and the optional ones (docs/inputs.md), which are read when present, copied into run
folders and hashed into the scenario's identity like the others."""

from __future__ import annotations

from gcm_fund.inputs.history import HISTORY_COLUMNS, HISTORY_FILE, HistoryRow
from gcm_fund.inputs.schema import (
    CONTRIBUTION_COLUMNS,
    CONTRIBUTION_FILE,
    FX_COLUMNS,
    FX_FILE,
    INPUT_FILES,
    PROGRAMME_COLUMNS,
    PROGRAMME_FILE,
    ContributionRow,
    FxRow,
    InputFile,
    ProgrammeRow,
    Reference,
)

OPTIONAL_INPUT_FILES: dict[str, InputFile] = {
    CONTRIBUTION_FILE: InputFile(CONTRIBUTION_FILE, ContributionRow, CONTRIBUTION_COLUMNS,
                                 key=("source_id", "date", "currency", "status")),
    FX_FILE: InputFile(FX_FILE, FxRow, FX_COLUMNS, key=("currency", "date")),
    # Read only under `method = "programmes"` (docs/programmes.md); the others ignore it.
    PROGRAMME_FILE: InputFile(
        PROGRAMME_FILE, ProgrammeRow, PROGRAMME_COLUMNS, key=("programme_id",),
        references=(Reference(PROGRAMME_FILE, "states", "states.csv", "iso3"),)),
    # Past cycles (docs/cycles.md).
    HISTORY_FILE: InputFile(
        HISTORY_FILE, HistoryRow, HISTORY_COLUMNS, key=("cycle", "iso3", "target"),
        references=(Reference(HISTORY_FILE, "iso3", "states.csv", "iso3"),)),
}


def input_file(name: str) -> InputFile:
    """The declaration of an input file, required or optional."""
    return INPUT_FILES.get(name) or OPTIONAL_INPUT_FILES[name]
