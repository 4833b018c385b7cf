"""Frame-range strings as typed by users and render-farm managers: "1-48", "1,3,5-7", "12"."""

from __future__ import annotations

MAX_FRAMES = 100_000


def parse_frames(text: str) -> list[int]:
    """Parse a frame list into sorted unique frame numbers; raises ValueError with a one-line reason.

    Items are separated by commas; an item is ``N`` or ``A-B`` (inclusive, A <= B). Negative frames
    are allowed as ``-5`` or ``-5--1`` since Blender scenes may start below zero.
    """
    frames: set[int] = set()
    items = [s.strip() for s in text.replace(" ", "").split(",")]
    if not text.strip() or any(not s for s in items):
        raise ValueError(f"empty item in frame list {text!r} (expected e.g. 1-48 or 1,3,5-7)")
    for item in items:
        lo, hi = _parse_item(item)
        if hi - lo + 1 + len(frames) > MAX_FRAMES:
            raise ValueError(f"frame list {text!r} has more than {MAX_FRAMES} frames")
        frames.update(range(lo, hi + 1))
    return sorted(frames)


def _parse_item(item: str) -> tuple[int, int]:
    # Split on the first '-' that is not a leading sign.
    cut = item.find("-", 1)
    try:
        if cut < 0:
            n = int(item)
            return n, n
        lo, hi = int(item[:cut]), int(item[cut + 1 :])
    except ValueError:
        raise ValueError(f"bad frame item {item!r} (expected N or A-B)") from None
    if hi < lo:
        raise ValueError(f"bad frame range {item!r}: end before start")
    return lo, hi
