"""The dataset manifest: one JSON record per line in ``<root>/manifest.jsonl``, sorted by id.

A record (the project contract, written by render/dataset.py):
``{"id": "000042", "index": 42, "seed": int, "size": int, "files": {"mask", "radiograph", "dxa",
"labels", "joints", "pose_map": path relative to root}, "body": {...}, "pose": {...},
"camera": {...}, "styles": ["radiograph", "dxa"]}``. ``labels.json`` maps label ids to bone
names. Pure stdlib + Pillow: maskel never imports render/.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

from maskel import MaskelError
from maskel.atomic import atomic_write_bytes
from maskel.data.contract import CONTRACT

MANIFEST = "manifest.jsonl"
LABELS = "labels.json"
STYLES: tuple[str, ...] = tuple(CONTRACT["styles"])
"""The X-ray styles a phantom dataset carries, in channel order, from maskel/data/contract.json (a
sample record without its own ``styles`` list has these)."""
FILE_KEYS = ("mask", *STYLES, "labels", "joints", "pose_map")


def sample_id(index: int) -> str:
    """The id (and folder name) of sample ``index``."""
    return f"{index:06d}"


def sample_files(sid: str, keys: Iterable[str] = FILE_KEYS) -> dict[str, str]:
    """Where a sample's files go, relative to the dataset root: ``samples/<id>/<key>.png``
    (``joints.json``)."""
    return {k: f"samples/{sid}/{k}.{'json' if k == 'joints' else 'png'}" for k in keys}


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str, "index": int, "seed": int, "size": int, "files": dict,
    "body": dict, "pose": dict, "camera": dict, "styles": list,
}  # fmt: skip


def validate_record(rec: Any) -> None:
    """Raise MaskelError (without the sample name; the caller adds it) if a record breaks the schema."""
    if not isinstance(rec, dict):
        raise MaskelError("record is not a JSON object")
    for key, typ in _FIELDS.items():
        if key not in rec:
            raise MaskelError(f"missing field {key!r}")
        if not isinstance(rec[key], typ) or (typ is int and isinstance(rec[key], bool)):
            raise MaskelError(f"field {key!r} must be {typ.__name__}")
    if rec["size"] <= 0:
        raise MaskelError("field 'size' must be positive")
    missing = [k for k in FILE_KEYS if not isinstance(rec["files"].get(k), str)]
    if missing:
        raise MaskelError(f"files lacks {', '.join(missing)}")
    if not rec["styles"] or not all(isinstance(s, str) for s in rec["styles"]):
        raise MaskelError("styles must be a non-empty list of names")


def check_files(root: Path, rec: dict[str, Any]) -> None:
    """Each listed file exists inside root; PNGs pass PIL's verify (cheap CRC/chunk check) and
    have the record's size; JSON files parse."""
    root_res = root.resolve()
    for key in FILE_KEYS:
        rel = rec["files"][key]
        path = (root / rel).resolve()
        if root_res not in path.parents:
            raise MaskelError(f"{key} file {rel!r} lies outside the dataset")
        if not path.is_file():
            raise MaskelError(f"{key} file {rel} is missing")
        if path.suffix == ".png":
            try:
                with Image.open(path) as img:
                    size = img.size
                    img.verify()
            except Exception as e:  # PIL raises many types for corrupt data
                raise MaskelError(f"{key} file {rel} is not a readable PNG ({type(e).__name__})") from None
            if size != (rec["size"], rec["size"]):
                raise MaskelError(f"{key} file {rel} is {size[0]}x{size[1]}, expected {rec['size']}²")
        elif path.suffix == ".json":
            try:
                json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise MaskelError(f"{key} file {rel} is not valid JSON ({e})") from None


def _parse_lines(path: Path) -> Iterable[tuple[int, str]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, line


def read_manifest(
    root: str | os.PathLike, on_error: str = "raise", verify_files: bool = True
) -> list[dict[str, Any]]:
    """Read and validate ``<root>/manifest.jsonl``.

    on_error="raise": the first broken record (malformed line, bad field, missing or corrupt
    file, duplicate id) raises MaskelError naming the sample; "skip": it is left out with a
    warning. Returns the records sorted by id.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise MaskelError(f"{path}: no manifest (is {root} a dataset folder?)")
    out: dict[str, dict[str, Any]] = {}
    for n, line in _parse_lines(path):
        name = f"line {n}"
        try:
            try:
                rec = json.loads(line)
            except ValueError:
                raise MaskelError("malformed JSON line") from None
            if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                name = f"sample {rec['id']}"
            validate_record(rec)
            if rec["id"] in out:
                raise MaskelError("duplicate id")
            if verify_files:
                check_files(root, rec)
        except MaskelError as e:
            msg = f"{path}: {name}: {e}"
            if on_error == "raise":
                raise MaskelError(msg) from None
            warnings.warn(f"skipped {msg}", stacklevel=2)
            continue
        out[rec["id"]] = rec
    if not out:
        raise MaskelError(f"{path}: no usable samples")
    return [out[k] for k in sorted(out)]


def read_labels(root: str | os.PathLike) -> dict[int, str]:
    """``<root>/labels.json`` -> {id: bone name}."""
    path = Path(root) / LABELS
    try:
        raw = json.loads(path.read_text())
        return {int(k): str(v) for k, v in raw.items()}
    except FileNotFoundError:
        raise MaskelError(f"{path}: missing") from None
    except (OSError, ValueError, AttributeError) as e:
        raise MaskelError(f"{path}: not a label table ({e})") from None


def append_record(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one record as one line with a single write + fsync (a crash leaves at most a
    truncated last line, which `load_part` drops)."""
    line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def load_part(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of a manifest (part) file being appended to; a truncated or malformed line (left by a
    crash mid-append) is dropped and the file rewritten without it. Missing file -> []."""
    path = Path(path)
    if not path.exists():
        return []
    good: list[dict[str, Any]] = []
    dropped = False
    for _, line in _parse_lines(path):
        try:
            rec = json.loads(line)
            validate_record(rec)
        except (ValueError, MaskelError):
            dropped = True
            continue
        if not line.endswith("\n"):
            dropped = True
            continue
        good.append(rec)
    if dropped:
        write_manifest(path, good, sort=False)
    return good


def write_manifest(path: str | os.PathLike, records: Iterable[dict[str, Any]], sort: bool = True) -> None:
    """Write records as JSON lines atomically (sorted by id unless sort=False)."""
    recs = sorted(records, key=lambda r: r["id"]) if sort else list(records)
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in recs)
    atomic_write_bytes(path, text.encode("utf-8"))


def merge_manifests(root: str | os.PathLike, parts: Iterable[str | os.PathLike]) -> int:
    """Merge manifest part files into ``<root>/manifest.jsonl`` (sorted by id, atomically).

    A sample present in several parts must be the same record; a conflict raises MaskelError.
    Returns the number of samples.
    """
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for rec in load_part(part):
            old = merged.setdefault(rec["id"], rec)
            if old != rec:
                raise MaskelError(f"sample {rec['id']} differs between manifest parts ({part})")
    write_manifest(Path(root) / MANIFEST, merged.values())
    return len(merged)
