"""PNG conventions of DESIGN.md section 2: masks in, X-rays and label maps out.

Mask: 8-bit single channel, 255 body / 0 background. RGBA input uses its alpha; anything else
(RGB, 16-bit, grey with intermediate values) is thresholded at 50% and the conversion reported.
X-ray: float in [0, 1] inside the package, 16-bit grayscale PNG on disk (8-bit on request).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from maskel import MaskelError
from maskel.atomic import atomic_write_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 4096 * 4096
"""Largest image accepted anywhere (decompression-bomb guard); the server may set a lower one."""


@dataclass
class LoadedMask:
    mask: np.ndarray  # bool (H, W), True = body
    note: str | None  # what conversion was applied, if any (to report to the user)


def _open_png(data: bytes | str | os.PathLike, max_pixels: int) -> Image.Image:
    name = "image" if isinstance(data, bytes) else str(data)
    try:
        src = io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")
    except OSError as e:
        raise MaskelError(f"{name}: cannot open ({e.strerror})") from None
    with src:
        head = src.read(24)
        src.seek(0)
        if head[:8] != PNG_SIGNATURE:
            raise MaskelError(f"{name}: not a PNG")
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise MaskelError(f"{name}: not a readable PNG (truncated header)")
        w, h = struct.unpack(">II", head[16:24])
        if w * h > max_pixels:
            raise MaskelError(f"{name}: {w}x{h} pixels exceeds the limit of {max_pixels} pixels")
        try:
            img = Image.open(src)
            img.load()
        except Image.DecompressionBombError:
            raise MaskelError(f"{name}: {w}x{h} pixels exceeds the decoder's limit") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise MaskelError(f"{name}: not a readable PNG ({e})") from None
    return img


def load_mask(data: bytes | str | os.PathLike, max_pixels: int = MAX_PIXELS) -> LoadedMask:
    """Read a silhouette PNG (path or bytes) into a boolean array; raise MaskelError if unusable."""
    img = _open_png(data, max_pixels)
    note = None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        arr = np.asarray(img.convert("RGBA"))[..., 3]
        mask = arr >= 128
        if img.mode != "LA" or np.any((arr > 0) & (arr < 255)):
            note = f"used the alpha channel of a {img.mode} image"
    else:
        arr = np.asarray(img)
        if arr.ndim == 3:
            arr = arr[..., :3].astype(np.float32).mean(axis=2)
        arr = arr.astype(np.float64)
        top = 65535.0 if img.mode.startswith("I") and arr.max() > 255 else (1.0 if img.mode == "1" else 255.0)
        mask = arr >= top / 2
        if img.mode != "L" or np.any((arr > 0) & (arr < 255)):
            note = f"thresholded a {img.mode} image at 50%"
    if not mask.any():
        raise MaskelError("the mask is empty (no body pixels)")
    if mask.all():
        raise MaskelError("the mask is full (no background pixels): is it inverted?")
    return LoadedMask(mask=mask, note=note)


def load_gray(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an 8- or 16-bit grayscale PNG as float32 in [0, 1]."""
    img = _open_png(path, max_pixels)
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = np.asarray(img.convert("L"))
    scale = 65535.0 if arr.dtype == np.uint16 or arr.max(initial=0) > 255 else 255.0
    return (arr.astype(np.float32) / scale).clip(0.0, 1.0)


def load_labels(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an 8-bit label PNG as uint8 ids."""
    img = _open_png(path, max_pixels)
    if img.mode not in ("L", "P"):
        raise MaskelError(f"{path}: a label map must be an 8-bit single-channel PNG, found {img.mode}")
    return np.asarray(img).astype(np.uint8)


def encode_gray(xray: np.ndarray, bits: int = 16) -> bytes:
    """Encode a float [0, 1] image as a grayscale PNG (16-bit by default)."""
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    x = np.nan_to_num(np.asarray(xray, dtype=np.float64), nan=0.0).clip(0.0, 1.0)
    if bits == 16:
        img = Image.fromarray((x * 65535.0 + 0.5).astype(np.uint16))
    else:
        img = Image.fromarray((x * 255.0 + 0.5).astype(np.uint8), mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def encode_u8(arr: np.ndarray) -> bytes:
    """Encode a uint8 single-channel array (mask 0/255, label ids) as an 8-bit PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr, dtype=np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def save_gray(path: str | os.PathLike, xray: np.ndarray, bits: int = 16) -> Path:
    return atomic_write_bytes(path, encode_gray(xray, bits))


def save_u8(path: str | os.PathLike, arr: np.ndarray) -> Path:
    return atomic_write_bytes(path, encode_u8(arr))


def save_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    return save_u8(path, np.where(np.asarray(mask, dtype=bool), 255, 0))
