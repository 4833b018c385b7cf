"""Build the installable add-on archives:

    python blender_addon/build.py [--out DIR]

- ``maskel_xray-<version>-legacy.zip``: a ``maskel_xray/`` folder with ``__init__.py`` + bl_info,
  for Edit > Preferences > Add-ons > Install on Blender 3.4 - 4.1 (also accepted by 4.2+ as a
  legacy add-on).
- ``maskel_xray-<version>-extension.zip``: ``blender_manifest.toml`` at the root, for
  Get Extensions > Install from Disk on Blender 4.2+ (incl. 5.0).

Output: ``blender_addon/_build/`` by default. Prints the two paths.
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


def version() -> str:
    """The add-on version from blender_manifest.toml, checked against bl_info so the two never drift."""
    manifest = (HERE / "blender_manifest.toml").read_text()
    m = re.search(r'^version\s*=\s*"([0-9]+)\.([0-9]+)\.([0-9]+)"', manifest, re.M)
    info = re.search(r'"version":\s*\((\d+),\s*(\d+),\s*(\d+)\)', (HERE / "__init__.py").read_text())
    if not m or not info or m.groups() != info.groups():
        raise SystemExit("build.py: blender_manifest.toml version and bl_info['version'] differ")
    return ".".join(m.groups())


def sources() -> list[Path]:
    out = []
    for root, dirs, files in os.walk(HERE):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for f in sorted(files):
            p = Path(root) / f
            if f in SKIP_FILES and p.parent == HERE or p.suffix in (".pyc", ".zip") or f.startswith("."):
                continue
            out.append(p)
    return out


def _write_zip(path: Path, prefix: str, files: list[Path]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for f in files:
                rel = f.relative_to(HERE).as_posix()
                info = zipfile.ZipInfo(prefix + rel, date_time=(2024, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, f.read_bytes())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def build(out_dir: Path = HERE / "_build") -> tuple[Path, Path]:
    """Write both zips (atomically, reproducibly) and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ver = version()
    files = sources()
    legacy = out_dir / f"{ADDON_ID}-{ver}-legacy.zip"
    extension = out_dir / f"{ADDON_ID}-{ver}-extension.zip"
    _write_zip(legacy, f"{ADDON_ID}/", [f for f in files if f.name != "blender_manifest.toml"])
    _write_zip(extension, "", files)
    return legacy, extension


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=HERE / "_build")
    args = p.parse_args(argv)
    for path in build(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
