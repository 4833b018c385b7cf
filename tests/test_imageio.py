"""PNG conventions: masks in (with conversions reported), 16-bit X-rays out, bad files rejected."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from maskel import MaskelError
from maskel.data.joints import CANONICAL_JOINTS, LIMBS, array_to_joints, joints_to_array
from maskel.data.posemap import render_limb_maps, render_pose_map
from maskel.imageio import encode_gray, load_gray, load_mask, save_gray, save_mask


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _body() -> np.ndarray:
    m = np.zeros((40, 30), dtype=bool)
    m[5:35, 10:20] = True
    return m


def test_mask_formats_agree():
    body = _body()
    grey = np.where(body, 255, 0).astype(np.uint8)
    assert load_mask(_png(grey)).note is None
    rgba = np.zeros((40, 30, 4), dtype=np.uint8)
    rgba[..., 3] = grey
    rgb = np.stack([grey] * 3, axis=-1)
    deep = (body * 65535).astype(np.uint16)
    for data in (_png(rgba), _png(rgb), _png(deep)):
        loaded = load_mask(data)
        np.testing.assert_array_equal(loaded.mask, body)
        assert loaded.note


def test_empty_full_and_broken_masks_are_errors(tmp_path):
    with pytest.raises(MaskelError, match="empty"):
        load_mask(_png(np.zeros((8, 8), np.uint8)))
    with pytest.raises(MaskelError, match="full"):
        load_mask(_png(np.full((8, 8), 255, np.uint8)))
    good = _png(np.where(_body(), 255, 0).astype(np.uint8))
    with pytest.raises(MaskelError, match="PNG"):
        load_mask(good[: len(good) // 2])
    with pytest.raises(MaskelError, match="not a PNG"):  # a BMP
        buf = io.BytesIO()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="BMP")
        load_mask(buf.getvalue())
    with pytest.raises(MaskelError, match="cannot open"):
        load_mask(tmp_path / "missing.png")


def test_huge_header_is_refused_before_decoding():
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    with pytest.raises(MaskelError, match="exceeds"):
        load_mask(data, max_pixels=4096 * 4096)


def test_xray_16bit_round_trip(tmp_path):
    x = np.linspace(0, 1, 64 * 32, dtype=np.float32).reshape(64, 32)
    path = save_gray(tmp_path / "x.png", x)
    assert Image.open(path).mode.startswith("I")
    np.testing.assert_allclose(load_gray(path), x, atol=1 / 65535)
    assert Image.open(io.BytesIO(encode_gray(x, bits=8))).mode == "L"
    save_mask(tmp_path / "m.png", _body())
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png").mask, _body())
    assert not list(tmp_path.glob(".*.tmp"))


def test_joints_round_trip_and_pose_map_sides():
    arr = np.zeros((len(CANONICAL_JOINTS), 4), np.float32)
    arr[CANONICAL_JOINTS.index("left_shoulder")] = [40, 20, 2.0, 1]
    arr[CANONICAL_JOINTS.index("left_elbow")] = [45, 40, 2.0, 1]
    arr[CANONICAL_JOINTS.index("right_shoulder")] = [20, 20, 2.2, 1]
    arr[CANONICAL_JOINTS.index("right_elbow")] = [15, 40, 2.2, 0]
    pose = array_to_joints(arr, 64, 64)
    np.testing.assert_allclose(joints_to_array(pose), arr, atol=1e-3)
    pm = render_pose_map(arr, 64)
    assert pm[30, 42] == pytest.approx(0.66)  # left upper arm
    assert pm[30, 17] == pytest.approx(0.33)  # right upper arm (hidden joints still drawn)
    assert pm[60, 5] == 0
    with pytest.raises(MaskelError, match="unknown joint"):
        joints_to_array({"joints": [{"name": "tail", "x": 1, "y": 1}]})


def test_limb_maps_keep_each_segment_and_depth_order():
    arr = np.zeros((len(CANONICAL_JOINTS), 4), np.float32)
    # forearms crossing in front of the chest: the left one nearer the camera than the right
    arr[CANONICAL_JOINTS.index("left_elbow")] = [50, 20, 2.0, 1]
    arr[CANONICAL_JOINTS.index("left_wrist")] = [10, 40, 2.0, 1]
    arr[CANONICAL_JOINTS.index("right_elbow")] = [10, 20, 2.4, 1]
    arr[CANONICAL_JOINTS.index("right_wrist")] = [50, 40, 2.4, 0]
    maps = render_limb_maps(arr, 64)
    left = [a for a, b, _ in LIMBS].index("left_elbow")
    right = [a for a, b, _ in LIMBS].index("right_elbow")
    assert maps.shape == (len(LIMBS), 64, 64)
    assert set(np.flatnonzero(maps.reshape(len(LIMBS), -1).max(axis=1))) == {left, right}
    # where they cross, both are present, each in its own channel, the nearer one brighter
    assert maps[left, 30, 30] == pytest.approx(1.0) and maps[right, 30, 30] == pytest.approx(0.5)
    assert not render_limb_maps(None, 64).any()  # no rig: the mask-only input
