"""The MPS file CBC reads (`PulpBackend._write_mps`): written from the matrices, the same
bytes as PuLP's own writer, so that CBC solves exactly the problem PuLP would give it."""

from __future__ import annotations

import filecmp
from pathlib import Path

from gcm_fund import api
from gcm_fund.solvers import pulp as pulp_backend

ROOT = Path(__file__).resolve().parents[2]


def test_every_stage_of_a_cbc_run_writes_pulps_mps_byte_for_byte(monkeypatch, tmp_path):
    """Each LP of a CBC run of the example under baseline (stage 1, 1b, the level steps
    with their holds, stage 3, the split: bounds on z and L, rows of both senses) is
    written by both writers; the files and the names handed back must agree."""
    from pulp import mps_lp

    written: list[bool] = []
    fast = pulp_backend.PulpBackend._write_mps

    def both(self, filename, mpsSense=0, rename=0, mip=1, with_objsense=False):  # noqa: N803
        ours = fast(self, filename, mpsSense, rename, mip, with_objsense)
        reference = str(tmp_path / f"pulp{len(written)}.mps")
        theirs = mps_lp.writeMPS(self.problem, reference, mpsSense=mpsSense, rename=rename,
                                 mip=mip, with_objsense=with_objsense)
        written.append(filecmp.cmp(filename, reference, shallow=False))
        assert [v.name for v in ours[0]] == [v.name for v in theirs[0]]
        assert ours[1:] == theirs[1:]
        return ours

    monkeypatch.setattr(pulp_backend.PulpBackend, "_write_mps", both)
    api.allocate(ROOT / "inputs", ROOT / "models" / "baseline.toml", "cbc",
                 donor_figures="none")
    assert len(written) >= 5 and all(written), written
