"""Build the installable add-on archive:

    python blender_addon/build.py [--out DIR]

``maskel_xray-<version>.zip`` holds one ``maskel_xray/`` folder with ``__init__.py`` (with bl_info)
and ``blender_manifest.toml``, so the same file installs everywhere: Edit > Preferences > Add-ons >
Install on Blender 3.4 - 4.1 unpacks the folder as a legacy add-on, and Get Extensions > Install from
Disk on 4.2+ (incl. 5.0) finds the manifest in the zip's single top folder. (Two archives, one per
install path, let a user install the wrong one, which scattered its files over the add-ons folder.)

Output: ``blender_addon/_build/`` by default. Prints the path.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ADDON_ID = "maskel_xray"
SKIP_DIRS = {"__pycache__", "_build"}
SKIP_FILES = {"build.py"}
CONTRACTS = {"core/contract.json": HERE.parent / "maskel" / "data" / "contract.json"}
"""Archive path -> the project file it is: contracts the add-on shares with the maskel package
(which Blender's Python cannot import), defined once there and copied in."""


def version() -> str:
    """The add-on version from blender_manifest.toml, checked against bl_info so the two never drift."""
    manifest = (HERE / "blender_manifest.toml").read_text()
    m = re.search(r'^version\s*=\s*"([0-9]+)\.([0-9]+)\.([0-9]+)"', manifest, re.M)
    info = re.search(r'"version":\s*\((\d+),\s*(\d+),\s*(\d+)\)', (HERE / "__init__.py").read_text())
    if not m or not info or m.groups() != info.groups():
        raise SystemExit("build.py: blender_manifest.toml version and bl_info['version'] differ")
    return ".".join(m.groups())


def sources() -> dict[str, Path]:
    """Archive path (inside the add-on's folder) -> file: the add-on's own files and CONTRACTS."""
    out = {}
    for root, dirs, files in os.walk(HERE):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for f in sorted(files):
            p = Path(root) / f
            if f in SKIP_FILES and p.parent == HERE or p.suffix in (".pyc", ".zip") or f.startswith("."):
                continue
            out[p.relative_to(HERE).as_posix()] = p
    return {**out, **CONTRACTS}


def _write_zip(path: Path, prefix: str, files: dict[str, Path]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for rel, f in sorted(files.items()):
                info = zipfile.ZipInfo(prefix + rel, date_time=(2024, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, f.read_bytes())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def build(out_dir: Path = HERE / "_build") -> Path:
    """Write the zip (atomically, reproducibly) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{ADDON_ID}-{version()}.zip"
    _write_zip(path, f"{ADDON_ID}/", sources())
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=HERE / "_build")
    args = p.parse_args(argv)
    print(build(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
