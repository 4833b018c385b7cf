"""The contract maskel, render/ and the Blender add-on share: ``contract.json`` beside this module.

It is a data file rather than Python because the add-on runs in Blender's own Python, which cannot
import this package; ``blender_addon/build.py`` copies the same file into the add-on's archive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACT_FILE = Path(__file__).with_name("contract.json")
CONTRACT: dict[str, Any] = json.loads(CONTRACT_FILE.read_text(encoding="utf-8"))
