"""Predictor and checkpoint discovery, on the real tiny checkpoint trained by the conftest fixture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from maskel import MaskelError, defaults
from maskel.data.joints import array_to_joints
from maskel.infer import Predictor, dilate


def body_mask(h: int, w: int, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A crude standing figure (head, trunk, arms, legs) scaled to the image."""
    m = np.zeros((h, w), bool)
    cy, cx = h // 2 + shift[0], w // 2 + shift[1]
    s = min(h, w) / 100
    yy, xx = np.mgrid[0:h, 0:w]
    m |= (yy - (cy - 35 * s)) ** 2 + (xx - cx) ** 2 <= (7 * s) ** 2
    m |= (abs(xx - cx) <= 9 * s) & (yy >= cy - 28 * s) & (yy <= cy + 5 * s)
    m |= (abs(abs(xx - cx) - 14 * s) <= 3 * s) & (yy >= cy - 26 * s) & (yy <= cy + 2 * s)
    m |= (abs(abs(xx - cx) - 5 * s) <= 3.5 * s) & (yy >= cy + 5 * s) & (yy <= cy + 42 * s)
    return m


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint: Path) -> Predictor:
    return Predictor(tiny_checkpoint, device="cpu", max_batch=2)


def test_output_has_the_input_size_and_stays_on_the_silhouette(predictor: Predictor) -> None:
    masks = [body_mask(203, 317), body_mask(64, 64), body_mask(317, 203), body_mask(97, 411)]
    preds = predictor.predict(masks, labels=True)
    assert len(preds) == len(masks)
    for m, p in zip(masks, preds, strict=True):
        assert p.xray.shape == m.shape and p.xray.dtype == np.float32
        assert 0.0 <= p.xray.min() and p.xray.max() <= 1.0
        outside = ~dilate(m, predictor.margin_px)
        assert not p.xray[outside].any(), "X-ray leaks outside the silhouette + margin"
        assert (p.xray[m] > 0).mean() > 0.5, "the body should be mostly non-black"
        assert predictor.has_labels, "the tiny preset has a label head"
        assert p.labels is not None and p.labels.shape == m.shape and not p.labels[~m].any()
        assert p.timings["batch_size"] <= 2


def test_pixel_alignment_follows_the_mask(predictor: Predictor) -> None:
    """A translated silhouette gives the same X-ray, translated by exactly the same pixels."""
    a = body_mask(160, 200)
    b = np.roll(a, (7, -13), axis=(0, 1))
    pa, pb = predictor.predict([a, b])
    assert np.allclose(np.roll(pa.xray, (7, -13), axis=(0, 1)), pb.xray, atol=1e-5)
    ys, xs = np.nonzero(pb.xray)
    my, mx = np.nonzero(b)
    assert ys.min() >= my.min() - 2 and ys.max() <= my.max() + 2
    assert xs.min() >= mx.min() - 2 and xs.max() <= mx.max() + 2


def test_body_cut_by_the_frame_edge(predictor: Predictor) -> None:
    m = body_mask(120, 90, shift=(40, 0))  # legs run off the bottom edge
    assert m[-1].any()
    (p,) = predictor.predict([m])
    assert p.xray.shape == m.shape and not p.xray[~dilate(m, 2)].any() and p.xray[m].mean() > 0


def test_batching_and_seed_do_not_change_results(predictor: Predictor) -> None:
    masks = [body_mask(100, 80), body_mask(90, 120), body_mask(64, 64)]
    together = predictor.predict(masks, seed=5)
    alone = [predictor.predict([m], seed=5)[0] for m in masks]
    for t, a in zip(together, alone, strict=True):
        assert np.allclose(t.xray, a.xray, atol=1e-4)
    again = predictor.predict(masks, seed=5)
    assert all(np.array_equal(t.xray, g.xray) for t, g in zip(together, again, strict=True))


def test_styles_and_joints_are_checked(predictor: Predictor) -> None:
    m = body_mask(100, 100)
    with pytest.raises(MaskelError, match="unknown style 'ct'.*" + predictor.styles[0]):
        predictor.predict([m], style="ct")
    for name in predictor.styles:
        assert predictor.predict([m], style=name)[0].xray.shape == m.shape
    joints = array_to_joints(np.zeros((22, 4)), width=50, height=100)
    assert predictor.pose_channel, "the tiny preset takes joints"
    with pytest.raises(MaskelError, match="joints are for a 50x100 image"):
        predictor.predict([m], joints=[joints])
    with pytest.raises(MaskelError, match="empty"):
        predictor.predict([np.zeros((10, 10), bool)])


def test_refuses_pickled_checkpoints(tmp_path: Path) -> None:
    pt = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, pt)
    with pytest.raises(MaskelError, match="refusing a pickled torch file") as e:
        Predictor(pt)
    assert "\n" not in str(e.value)
    disguised = tmp_path / "model.safetensors"
    shutil.copy(pt, disguised)
    with pytest.raises(MaskelError, match="pickle"):
        Predictor(disguised)


def test_a_safetensors_header_of_9600_bytes_is_not_taken_for_a_pickle(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from maskel.infer import refuse_pickle

    for pad in range(0, 400):  # metadata length picks the header size, whose low byte is the file's first
        path = tmp_path / "w.safetensors"
        save_file({"w": torch.zeros(2)}, path, metadata={"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no header size with a 0x80 low byte in range")
    refuse_pickle(path)  # must not raise
    assert load_file(path)["w"].shape == (2,)


def test_refuses_a_stage1_or_unknown_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    meta = json.loads(tiny_checkpoint.with_suffix(".json").read_text())
    for change, message in (({"stage": "stage1"}, "stage"), ({"format": "other/9"}, "format")):
        bad = tmp_path / f"bad_{message}.safetensors"
        save_file({"x": torch.zeros(1)}, str(bad), metadata={"maskel_meta": json.dumps({**meta, **change})})
        bad.with_suffix(".json").write_text(json.dumps({**meta, **change}))
        with pytest.raises(MaskelError, match=message):
            Predictor(bad)


def test_checkpoint_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, pkg, env, flag = (tmp_path / d for d in ("cache", "pkg", "env", "flag"))
    for d in (cache / "maskel", pkg, env, flag):
        d.mkdir(parents=True)
        (d / "default.safetensors").write_bytes(b"x")
    monkeypatch.setattr(defaults, "package_weights_dir", lambda: pkg)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("MASKEL_CHECKPOINT", str(env / "default.safetensors"))
    assert defaults.find_checkpoint(flag / "default.safetensors") == flag / "default.safetensors"
    assert defaults.find_checkpoint(flag) == flag / "default.safetensors"  # a directory
    assert defaults.find_checkpoint() == env / "default.safetensors"
    monkeypatch.delenv("MASKEL_CHECKPOINT")
    assert defaults.find_checkpoint() == cache / "maskel" / "default.safetensors"
    (cache / "maskel" / "default.safetensors").unlink()
    assert defaults.find_checkpoint() == pkg / "default.safetensors"
    (pkg / "default.safetensors").unlink()
    with pytest.raises(MaskelError) as e:
        defaults.find_checkpoint()
    text = str(e.value)
    assert "\n" not in text and "maskel.train stage1" in text and "maskel.train stage2" in text
    monkeypatch.setenv("MASKEL_CHECKPOINT", str(tmp_path / "nope.safetensors"))
    with pytest.raises(MaskelError, match="does not exist"):
        defaults.find_checkpoint()


def test_inference_never_imports_the_training_quantiser(tiny_checkpoint: Path) -> None:
    """vector-quantize-pytorch pulls einx and torch._dynamo (most of a cold start): inference
    looks codes up in the checkpoint's own codebook instead."""
    import subprocess
    import sys

    probe = (
        "import sys\nfrom maskel.infer import Predictor\nimport numpy as np\n"
        f"p = Predictor({str(tiny_checkpoint)!r}, device='cpu')\n"
        "m = np.zeros((40, 30), bool); m[5:35, 10:20] = True\n"
        "assert p.predict([m], labels=True)[0].labels is not None\n"
        "print(sorted(k for k in ('vector_quantize_pytorch', 'einx', 'torch._dynamo') if k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_label_head_runs_only_when_labels_are_asked_for(predictor: Predictor) -> None:
    calls = []
    hook = predictor.model.label_head.register_forward_hook(lambda *a: calls.append(1))
    try:
        mask = np.zeros((40, 30), bool)
        mask[5:35, 10:20] = True
        assert predictor.predict([mask])[0].labels is None and not calls
        assert predictor.predict([mask], labels=True)[0].labels is not None and calls
    finally:
        hook.remove()


def test_a_single_drawing_is_the_default_and_a_call_or_predictor_can_mirror_average(tiny_checkpoint: Path) -> None:
    single = Predictor(tiny_checkpoint, device="cpu")
    averaged = Predictor(tiny_checkpoint, device="cpu", mirror_average=True)
    assert averaged.info()["mirror_average"] and not single.info()["mirror_average"]
    masks = [body_mask(120, 90), body_mask(90, 120, shift=(5, -3))]
    pose = array_to_joints(np.array([[40.0 + i, 20.0 + 3 * i, 2.0 + 0.01 * i, 1.0] for i in range(22)], np.float32), 90, 120)
    joints = [pose, None]
    once = single.predict(masks, joints=joints)
    both = averaged.predict(masks, joints=joints)
    for a, b in zip(once, both, strict=True):
        assert not np.allclose(a.xray, b.xray, atol=1e-4)  # the average is another picture
    asked_once = averaged.predict(masks, joints=joints, mirror=False)
    asked_both = single.predict(masks, joints=joints, mirror=True)
    for a, b in zip(once + both, asked_once + asked_both, strict=True):
        assert np.allclose(a.xray, b.xray, atol=1e-5)
    # a batch mixing both kinds draws each as if alone
    mixed = averaged.forward([averaged.prepare(masks[0], pose, mirror=False), averaged.prepare(masks[1])])
    alone = [averaged.forward([averaged.prepare(masks[0], pose, mirror=False)])[0], averaged.forward([averaged.prepare(masks[1])])[0]]
    for a, b in zip(mixed, alone, strict=True):
        assert np.allclose(a.xray, b.xray, atol=1e-5)
