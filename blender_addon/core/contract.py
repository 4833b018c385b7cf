"""What the add-on shares with the maskel package: ``maskel/data/contract.json``, read here.

Blender's Python cannot import maskel, so build.py copies that file next to this module in the
add-on's archive; run from a source checkout, the file is read where it is defined.
"""

from __future__ import annotations

import json
from pathlib import Path

NAME = "contract.json"


def contract_file() -> Path:
    """The contract file this add-on reads: its archive's copy, else the source checkout's."""
    here = Path(__file__).resolve().parent
    for path in (here / NAME, here.parents[1] / "maskel" / "data" / NAME):
        if path.is_file():
            return path
    raise RuntimeError(f"the MaSkel add-on is incomplete: {NAME} is missing next to {here}")


_CONTRACT = json.loads(contract_file().read_text(encoding="utf-8"))

STYLES: dict[str, dict[str, str]] = _CONTRACT["styles"]
"""X-ray style -> {"label", "is" (a description)}, in the server's channel order."""
CANONICAL_JOINTS: tuple[str, ...] = tuple(_CONTRACT["joints"])
MAKEHUMAN_RIG: dict[str, str] = {joint: entry["at"] for joint, entry in _CONTRACT["makehuman_rig"].items()}
"""Canonical joint -> "bone:head|tail" on the MakeHuman default rig: the point each joint is."""
