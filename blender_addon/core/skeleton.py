"""bpy-free half of Add skeleton: decoding the server's bone meshes and choosing the rig bone that
carries each body segment."""

from __future__ import annotations

import base64
import sys
from array import array
from dataclasses import dataclass


@dataclass
class BoneMesh:
    name: str
    segment: str
    start: str  # the segment's start joint
    end: str  # its end joint
    vertices: list[tuple[float, float, float]]
    faces: list[tuple[int, int, int]]


def _unpack(b64: str, code: str, what: str) -> array:
    arr = array(code)
    try:
        arr.frombytes(base64.b64decode(b64, validate=True))
    except ValueError as e:  # binascii.Error is a ValueError; so is a length that is not a multiple
        raise ValueError(f"bad {what} ({e})") from None
    if sys.byteorder == "big":
        arr.byteswap()
    if len(arr) % 3:
        raise ValueError(f"{what} is not a list of triples")
    return arr


def decode_bones(reply: dict) -> list[BoneMesh]:
    """The bones of a maskel-skeleton/1 reply; ValueError (one line) when malformed."""
    out = []
    for b in reply.get("bones") or []:
        try:
            name, segment, start, end = str(b["name"]), str(b["segment"]), str(b["start"]), str(b["end"])
            v = _unpack(b["vertices"], "f", f"vertices of {name}")
            f = _unpack(b["faces"], "I", f"faces of {name}")
        except (KeyError, TypeError) as e:
            raise ValueError(f"the skeleton reply is malformed ({e})") from None
        n = len(v) // 3
        if len(f) and max(f) >= n:
            raise ValueError(f"faces of {name} refer to a missing vertex")
        out.append(BoneMesh(name, segment, start, end, list(zip(v[0::3], v[1::3], v[2::3], strict=True)),
                            list(zip(f[0::3], f[1::3], f[2::3], strict=True))))  # fmt: skip
    return out


def segment_bone(start: str, end: str, resolved: dict[str, tuple[str, str]]) -> str | None:
    """The rig bone that moves the segment from joint ``start`` to joint ``end``.

    ``resolved`` maps joints to (bone, "head"|"tail") as core.rigs resolves them. The bone whose head
    is the start joint runs along the segment (upper arm: the bone whose head is the shoulder); when
    the start joint is some bone's tail, the bone whose tail is the end joint is used instead.
    """
    if start in resolved and resolved[start][1] == "head":
        return resolved[start][0]
    if end in resolved and resolved[end][1] == "tail":
        return resolved[end][0]
    return resolved[start][0] if start in resolved else None
