"""Reading a run folder: its manifest and its tables as text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import EXIT_BAD_INPUT, GcmFundError

RUN_TABLES = ("allocations.csv", "coverage.csv", "sources_summary.csv", "constraints.csv")
ALLOCATION_COLUMNS = ("source_id", "iso3", "target", "amount_usd")
CONSTRAINT_COLUMNS = ("name", "family", "lhs", "rhs", "slack", "dual")
SCALES = {"USD": 1.0, "USD thousands": 1e3, "USD millions": 1e6, "USD billions": 1e9}


class NotARunFolder(GcmFundError):
    """The folder is not a run folder written by `gcm-fund allocate` (exit status 2)."""

    exit_code = EXIT_BAD_INPUT


@dataclass
class RunFolder:
    """A run folder: its manifest and where its files are."""

    path: Path
    manifest: dict[str, Any]

    @property
    def inputs(self) -> Path:
        """The copy of the input folder."""
        return self.path / "inputs"

    @property
    def policy(self) -> Path:
        """The copy of the policy file."""
        return self.path / "policy.toml"

    def has(self, name: str) -> bool:
        """Whether the run folder holds a file."""
        return (self.path / name).is_file()

    def table(self, name: str) -> pd.DataFrame:
        """A CSV file of the run as text cells (nothing parsed, nothing blank turned NaN)."""
        return pd.read_csv(self.path / name, dtype=str, keep_default_na=False,
                           na_filter=False)

    @property
    def floor_variable(self) -> dict[str, Any]:
        """manifest `floor_variable`, empty when absent."""
        found = self.manifest.get("floor_variable")
        return found if isinstance(found, dict) else {}

    @property
    def solved_scale(self) -> float:
        """USD per unit of the solver's amounts (manifest units.solved_in)."""
        units = self.manifest.get("units", {})
        return SCALES.get(units.get("solved_in", "USD millions") if isinstance(units, dict)
                          else "USD millions", 1e6)


def open_run(folder: Path | str) -> RunFolder:
    """A run folder's manifest; raises `NotARunFolder` when it has none."""
    path = Path(folder)
    if not path.is_dir():
        raise NotARunFolder(f"{path}: not a folder")
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise NotARunFolder(f"{path}: not a run folder (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotARunFolder(f"{manifest_path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or "run_id" not in manifest:
        raise NotARunFolder(f"{manifest_path}: not a run manifest (no run_id)")
    return RunFolder(path, manifest)
