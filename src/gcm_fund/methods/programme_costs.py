"""The programmes method's fixed pseudo-random costs (docs/programmes.md): the tie-break's
`c_p` and the split rule's `d[f,p]`, each in [1, 2) from the ids alone."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np


def _mix(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A number in [1, 2) from two 32-bit hashes (SplitMix64's finaliser, as split.py)."""
    mixed = (first.astype(np.uint64) << np.uint64(32)) | second.astype(np.uint64)
    mixed += np.uint64(0x9E3779B97F4A7C15)
    mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed ^= mixed >> np.uint64(31)
    return 1.0 + (mixed >> np.uint64(11)).astype(float) / 2.0**53


def _crc(names: Any) -> np.ndarray:
    return np.array([zlib.crc32(str(n).encode()) for n in names], dtype=np.uint64)


def tie_break_cost(programme_ids: list[str]) -> np.ndarray:
    """c_p in [1, 2): CRC-32 of `programme:<id>` and of `<id>` through SplitMix64."""
    return _mix(_crc([f"programme:{p}" for p in programme_ids]), _crc(programme_ids))


def split_cost(source_ids: np.ndarray, programme_ids: np.ndarray) -> np.ndarray:
    """d[f,p] in [1, 2): CRC-32 of the source id and of the programme id, mixed."""
    return _mix(_crc(source_ids), _crc(programme_ids))
