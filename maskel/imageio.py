"""PNG conventions of DESIGN.md section 2: masks in, X-rays and label maps out.

Mask: 8-bit single channel, 255 body / 0 background. RGBA input uses its alpha; anything else
(RGB, 16-bit, grey with intermediate values) is thresholded at 50% and the conversion reported.
X-ray: float in [0, 1] inside the package, 16-bit grayscale PNG on disk (8-bit on request).
"""

from __future__ import annotations

import io
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from maskel.atomic import atomic_write_bytes
from maskel.errors import BadImage, BadMask, MaskelError, OutputError, TooLarge

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 4096 * 4096
"""Largest image accepted anywhere (decompression-bomb guard); the server may set a lower one."""
PNG_LEVEL = 1
"""zlib level of every PNG written: level 1 took 0.45x the time of the default (6) for +12 % bytes at 512²."""
_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


@dataclass
class LoadedMask:
    mask: np.ndarray  # bool (H, W), True = body
    note: str | None  # what conversion was applied, if any (to report to the user)


def png_dimensions(head: bytes, name: str = "image") -> tuple[int, int]:
    """(width, height) from a PNG's first 24 bytes (signature + IHDR), without decoding anything."""
    if head[:8] != PNG_SIGNATURE:
        raise BadImage(f"{name}: not a PNG")
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise BadImage(f"{name}: not a readable PNG (truncated header)")
    return struct.unpack(">II", head[16:24])


def check_pixels(w: int, h: int, max_pixels: int, name: str = "image") -> None:
    if w * h > max_pixels:
        raise TooLarge(f"{name}: {w}x{h} pixels exceeds the limit of {max_pixels} pixels")


def _open_png(data: bytes | str | os.PathLike, max_pixels: int, name: str | None = None) -> Image.Image:
    name = name or ("image" if isinstance(data, bytes) else str(data))
    try:
        src = io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")
    except OSError as e:
        raise MaskelError(f"{name}: cannot open ({e.strerror})") from None
    with src:
        head = src.read(24)
        src.seek(0)
        w, h = png_dimensions(head, name)
        check_pixels(w, h, max_pixels, name)
        try:
            img = Image.open(src)
            img.load()
        except Image.DecompressionBombError:
            raise TooLarge(f"{name}: {w}x{h} pixels exceeds the decoder's limit") from None
        except (OSError, SyntaxError, ValueError) as e:  # PIL names its file object: keep that out
            detail = " ".join(_OBJECT_REPR.sub("", str(e)).split())
            raise BadImage(f"{name}: not a readable PNG ({detail or type(e).__name__})") from None
    return img


def require_silhouette(mask: np.ndarray) -> None:
    """The one check that a boolean mask is a usable silhouette (some body, some background)."""
    if mask.ndim != 2:
        raise BadMask(f"a mask must be a 2-D array, got shape {mask.shape}")
    if not mask.any():
        raise BadMask("the mask is empty (no body pixels)")
    if mask.all():
        raise BadMask("the mask is full (no background pixels): is it inverted?")


def load_mask(data: bytes | str | os.PathLike, max_pixels: int = MAX_PIXELS, name: str | None = None) -> LoadedMask:
    """Read a silhouette PNG (path or bytes) into a boolean array; raise a MaskelError if unusable.

    8-bit grey masks are compared in place (1 byte a pixel); only other modes are converted."""
    img = _open_png(data, max_pixels, name)
    note = None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        arr = np.asarray(img.getchannel("A") if img.mode in ("RGBA", "LA") else img.convert("RGBA").getchannel("A"))
        mask = arr >= 128
        if img.mode != "LA" or np.any((arr > 0) & (arr < 255)):
            note = f"used the alpha channel of a {img.mode} image"
    elif img.mode == "L":
        arr = np.asarray(img)
        mask = arr >= 128
        if np.any((arr > 0) & (arr < 255)):
            note = "thresholded a L image at 50%"
    elif img.mode == "1":
        mask = np.asarray(img).astype(bool)
        note = "thresholded a 1 image at 50%"
    elif img.mode.startswith(("I", "F")):
        arr = np.asarray(img)
        top = 65535 if arr.max() > 255 else 255
        mask = arr >= top / 2
        note = f"thresholded a {img.mode} image at 50%"
    else:  # RGB and the rest: the mean of the colour channels at 50% (a sum, to stay in integers)
        arr = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
        total = arr[..., 0].astype(np.uint16)
        total += arr[..., 1]
        total += arr[..., 2]
        mask = total >= 383
        del total
        note = f"thresholded a {img.mode} image at 50%"
    require_silhouette(mask)
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
    x = np.nan_to_num(np.asarray(xray, dtype=np.float32), nan=0.0).clip(0.0, 1.0)
    top = np.float32(65535.0 if bits == 16 else 255.0)
    x *= top
    x += np.float32(0.5)
    img = Image.fromarray(x.astype(np.uint16 if bits == 16 else np.uint8))
    del x
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_LEVEL)
    return buf.getvalue()


def encode_u8(arr: np.ndarray) -> bytes:
    """Encode a uint8 single-channel array (mask 0/255, label ids) as an 8-bit PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(buf, format="PNG", compress_level=PNG_LEVEL)
    return buf.getvalue()


def _write(path: str | os.PathLike, data: bytes) -> Path:
    try:
        return atomic_write_bytes(path, data)
    except OSError as e:
        raise OutputError(f"cannot write {path} ({e.strerror or e})") from None


def save_gray(path: str | os.PathLike, xray: np.ndarray, bits: int = 16) -> Path:
    return _write(path, encode_gray(xray, bits))


def save_u8(path: str | os.PathLike, arr: np.ndarray) -> Path:
    return _write(path, encode_u8(arr))


def save_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    return save_u8(path, np.where(np.asarray(mask, dtype=bool), 255, 0))
