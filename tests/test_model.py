"""The MaSkel model parts in process: convolutional MAE, generator (gating, limb maps, label head
on demand, stage-1 decoder start, inference quantiser = training quantiser), checkpoints, GAN
gradient isolation, augmentation and crop alignment, overfitting a fixed batch."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from maskel import MaskelError
from maskel.checkpoint import load_checkpoint, load_state, make_meta, save_checkpoint, save_state
from maskel.config import load_config
from maskel.data.augment import AugmentConfig, augment_sample, mirror_label_table
from maskel.data.datasets import TrainView, load_paired, split_indices
from maskel.data.joints import JOINT_INDEX
from maskel.ema import ema_update, frozen_copy
from maskel.metrics import sharpness
from maskel.models import build_generator, build_mae, load_generator, load_mae
from maskel.models.discriminator import build_discriminator
from maskel.models.generator import LIMB_CHANNELS
from maskel.models.losses import discriminator_loss, generator_loss, gradient_l1
from maskel.stages import Placement, Stage2
from tests._train_helpers import LABEL_NAMES, write_manifest_dataset


def tiny_cfg(pose: bool = True, styles: tuple[str, ...] = ("radiograph", "dxa"), labels: int = 4) -> dict:
    cfg = load_config("tiny")
    cfg.update(styles=list(styles), pose_channel=pose, num_labels=labels)
    return cfg


def tiny_batch(cfg: dict, b: int = 4, seed: int = 0, size: int | None = None) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    r = size or cfg["resolution"]
    mask = (torch.rand(b, 1, r, r, generator=g) > 0.5).float()
    return {
        "mask": mask,
        "pose": torch.rand(b, LIMB_CHANNELS, r, r, generator=g) * (torch.rand(b, 1, 1, 1, generator=g) > 0.3),
        "xray": torch.rand(b, len(cfg["styles"]), r, r, generator=g) * mask,
        "labels": torch.randint(0, max(1, cfg["num_labels"]), (b, r, r), generator=g),
    }


def trio(cfg: dict):
    gen = build_generator(cfg, training=True)
    return gen, build_mae(cfg).requires_grad_(False), build_discriminator(cfg, gen.in_channels)


# --- stage 1 --------------------------------------------------------------------------------


def test_mae_latent_is_spatial_and_convolutional():
    cfg = tiny_cfg()
    mae = build_mae(cfg).eval()
    x = torch.rand(3, 2, 32, 32)
    z = mae.encode(x)
    assert z.shape == (3, cfg["mae"]["latent_dim"], 8, 8)
    # Fully convolutional: a frame of another size and aspect gives a latent of its own shape,
    # and a change in one corner of the X-ray leaves the latent of the far corner unchanged.
    assert mae.encode(torch.rand(1, 2, 48, 24)).shape == (1, cfg["mae"]["latent_dim"], 12, 6)
    x = torch.rand(3, 2, 96, 96)
    z = mae.encode(x)
    x2 = x.clone()
    x2[:, :, :4, :4] = 1.0 - x2[:, :, :4, :4]
    z2 = mae.encode(x2)
    assert not torch.allclose(z2[:, :, 0, 0], z[:, :, 0, 0])
    assert torch.allclose(z2[:, :, -1, -1], z[:, :, -1, -1])
    with pytest.raises(ValueError, match="multiple of the patch size"):
        mae.encode(torch.rand(1, 2, 30, 32))


def test_mae_masks_patches_and_weights_them_in_the_loss():
    cfg = tiny_cfg()
    mae = build_mae(cfg)
    mae.full_view = 0.0
    x = torch.rand(2, 2, 32, 32)
    torch.manual_seed(0)
    out = mae(x)
    m = out["mask"]
    assert m.shape == (2, 1, 32, 32)
    per_patch = m[:, 0, ::4, ::4]  # 4x4 patches, constant inside each
    assert torch.equal(m, per_patch.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, None])
    assert [int(v) for v in per_patch.flatten(1).sum(1)] == [48, 48]  # 75% of 64 patches
    err = (out["pred"] - x).abs() + (out["pred"] - x) ** 2
    w = m + mae.visible_weight * (1 - m)
    assert torch.allclose(out["loss"], (err * w).sum() / (w.sum() * 2))
    mae.full_view = 1.0
    assert float(mae(x)["mask"].sum()) == 0.0  # full-view samples: nothing blanked


def test_mae_loss_weights_the_air_around_the_body_by_background_weight():
    mae = build_mae(tiny_cfg())
    x = torch.zeros(1, 2, 32, 32)
    x[..., 10:22, 12:20] = 0.6  # the body; more than 2 px away from it is air
    removed = torch.zeros(1, 1, 32, 32)
    air = torch.ones(1, 1, 32, 32)
    air[..., 8:24, 10:22] = 0.0
    black = torch.zeros_like(x)  # the collapsed model's picture: wrong only inside the body
    hazy = x + 0.3 * air  # wrong only in the air
    losses = {}
    for bw in (1.0, 0.1):
        mae.background_weight = bw
        losses[bw] = (float(mae.forward_loss(x, black, removed)), float(mae.forward_loss(x, hazy, removed)))
        w = (1 - air) + bw * air
        err = (hazy - x).abs() + (hazy - x) ** 2
        assert losses[bw][1] == pytest.approx(float((err * mae.visible_weight * w).sum() / (mae.visible_weight * w.sum() * 2)), rel=1e-5)
    assert losses[0.1][0] > 2 * losses[1.0][0]  # drawing nothing costs more when the air counts less
    assert losses[0.1][1] < 0.5 * losses[1.0][1]


# --- stage 2 --------------------------------------------------------------------------------


@pytest.mark.parametrize("pose", [True, False])
def test_load_generator_shapes_ranges_and_gating(tmp_path: Path, pose: bool):
    cfg = tiny_cfg(pose=pose)
    gen = build_generator(cfg, training=True).eval()
    save_checkpoint(tmp_path / "g", gen.state_dict(), make_meta("stage2", cfg, 5, {"ssim_body": 0.1}, {"samples": 0}))
    loaded, meta = load_generator(tmp_path / "g.safetensors")
    assert not loaded.training and meta["stage"] == "stage2" and meta["styles"] == ["radiograph", "dxa"]
    assert meta["pose_channel"] is pose
    mask = torch.zeros(3, 1, 32, 32)
    mask[:, :, 8:24, 10:20] = 1.0
    limbs = torch.rand(3, LIMB_CHANNELS, 32, 32)
    with torch.no_grad():
        out = loaded(mask, limbs if pose else None, labels=True)
        ref = gen(mask, None)
        no_labels = loaded(mask, limbs if pose else None)
    assert out["xray"].shape == (3, 2, 32, 32) and out["labels"].shape == (3, 4, 32, 32)
    assert "labels" not in no_labels  # the label head runs only when asked for
    assert float(out["xray"].min()) >= 0.0 and float(out["xray"].max()) <= 1.0
    outside = torch.ones_like(mask)
    outside[:, :, 7:25, 9:21] = 0.0  # beyond the mask dilated by one pixel
    assert float((out["xray"] * outside).abs().max()) == 0.0
    if pose:  # the limb maps are used, and the lookup quantiser matches the library's
        assert not torch.allclose(out["xray"], ref["xray"])
        with torch.no_grad():
            assert torch.allclose(loaded(mask, limbs)["xray"], gen(mask, limbs)["xray"], atol=1e-6)
    else:
        assert torch.allclose(out["xray"], ref["xray"], atol=1e-6)
    with torch.no_grad():  # fully convolutional: a frame of another aspect
        assert loaded(torch.ones(1, 1, 24, 40))["xray"].shape == (1, 2, 24, 40)


@pytest.mark.parametrize("projected", [True, False])  # a codebook in fewer dims, or in the latent's own
def test_inference_lookup_equals_the_training_quantiser(projected: bool):
    cfg = tiny_cfg()
    latent_dim = cfg["mae"]["latent_dim"]
    cfg["generator"] = dict(cfg["generator"], codebook_dim=latent_dim // 2 if projected else latent_dim)
    lib = build_generator(cfg, training=True)
    lib.train()
    lib(*[tiny_batch(cfg)[k] for k in ("mask", "pose")])  # one EMA update moves the codebook
    lib.eval()
    look = build_generator(cfg)
    look.load_state_dict(lib.state_dict())
    z = torch.randn(2, cfg["mae"]["latent_dim"], 8, 8)
    with torch.no_grad():
        q_lib, i_lib, _ = lib.quantize(z)
        q_look, i_look, _ = look.quantize(z)
    assert torch.equal(i_lib, i_look) and torch.allclose(q_lib, q_look, atol=1e-6)


def test_stage2_decoder_starts_as_the_stage1_decoder():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    mae = build_mae(cfg).eval()
    gen = build_generator(cfg).eval()
    gen.init_from_stage1(mae)
    z = torch.randn(2, cfg["mae"]["latent_dim"], 8, 8)
    skips = [torch.randn(2, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate(cfg["mae"]["channels"][:-1])]
    with torch.no_grad():
        assert torch.allclose(gen.decoder(z, skips)[0], mae.forward_decoder(z))


def test_discriminator_gradients_never_reach_the_generator_and_vice_versa():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    gen, mae, disc = trio(cfg)
    batch = tiny_batch(cfg)
    w = dict(cfg["stage2"]["loss"], adv=1.0)
    loss, terms, pred, cond = generator_loss(gen, mae, disc, batch, w, use_adv=True)
    loss.backward()
    assert {"adv", "latent", "label", "l1", "ssim"} <= set(terms)
    assert all(p.grad is None for p in disc.parameters()), "generator step wrote discriminator grads"
    assert all(p.requires_grad for p in disc.parameters()), "discriminator left frozen"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.parameters())
    gen.zero_grad(set_to_none=True)
    d_loss = discriminator_loss(disc, batch["xray"], pred, cond)
    d_loss.backward()
    assert all(p.grad is None for p in gen.parameters()), "discriminator step leaked into the generator"
    assert all(p.grad is not None for p in disc.parameters())


def test_adversarial_term_changes_generator_gradients():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    gen, mae, disc = trio(cfg)
    batch = tiny_batch(cfg)
    grads = []
    for use_adv in (False, True):
        gen.zero_grad(set_to_none=True)
        gen.quantizer.eval()  # no EMA update between the two passes
        loss, _, _, _ = generator_loss(gen, mae, disc, batch, dict(cfg["stage2"]["loss"], adv=1.0), use_adv)
        loss.backward()
        grads.append(gen.decoder.to_xray.weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_gradient_term_sees_edges_not_offsets_and_sharpens_a_blur():
    """L1 between image gradients: blind to a constant offset (which L1 sees), and descending it
    from a blurred copy makes the image sharper."""
    torch.manual_seed(0)
    sharp = (torch.rand(1, 1, 32, 32) > 0.5).float()
    region = torch.ones(1, 1, 32, 32)
    assert gradient_l1(sharp + 0.2, sharp, region) < 1e-6 < (sharp + 0.2 - sharp).abs().mean()
    pred = F.avg_pool2d(sharp, 3, stride=1, padding=1, count_include_pad=False).requires_grad_(True)
    before = float(sharpness(pred.detach(), region))
    opt = torch.optim.Adam([pred], lr=0.02)
    for _ in range(50):
        opt.zero_grad()
        gradient_l1(pred, sharp, region).backward()
        opt.step()
    assert float(sharpness(pred.detach(), region)) > 1.2 * before


def test_generator_loss_has_the_gradient_term_only_when_weighted():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    gen, mae, disc = trio(cfg)
    batch = tiny_batch(cfg)
    weights = dict(cfg["stage2"]["loss"])
    _, terms, _, _ = generator_loss(gen, mae, disc, batch, dict(weights, grad=0.0), False)
    assert "grad" not in terms
    _, terms, _, _ = generator_loss(gen, mae, disc, batch, dict(weights, grad=1.0), False)
    assert terms["grad"] > 0


def test_stage2_overfits_a_fixed_batch():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    gen, mae, disc = trio(cfg)
    batch = tiny_batch(cfg)
    # a target the mask determines (noise cannot be drawn from a mask): its local density
    batch["xray"] = (torch.nn.functional.avg_pool2d(batch["mask"], 5, 1, 2) * batch["mask"]).expand(-1, 2, -1, -1)
    opt = torch.optim.Adam(gen.parameters(), lr=3e-3)
    w = dict(cfg["stage2"]["loss"], adv=0.0, label=0.0)
    first = last = None
    for _ in range(80):
        loss, terms, _, _ = generator_loss(gen, mae, disc, batch, w, use_adv=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else terms["l1"]
        last = terms["l1"]
    assert last < 0.6 * first, (first, last)


def test_stage1_overfits_a_fixed_batch():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    mae = build_mae(cfg)
    m = tiny_batch(cfg)["mask"]
    x = torch.nn.functional.avg_pool2d(m, 9, 1, 4).expand(-1, 2, -1, -1)  # smooth: blanked patches are predictable
    opt = torch.optim.Adam(mae.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = mae(x, mask_ratio=0.5)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3])


# --- checkpoints ----------------------------------------------------------------------------


def test_checkpoint_refuses_pickles_and_wrong_stage_or_resolution(tmp_path: Path):
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    (tmp_path / "evil.json").write_text("{}")
    with pytest.raises(MaskelError, match="pickled checkpoints are refused"):
        load_checkpoint(evil)
    torch.save({"w": torch.zeros(2)}, tmp_path / "zip.safetensors")
    with pytest.raises(MaskelError, match="not a safetensors file"):
        load_checkpoint(tmp_path / "zip")
    cfg = tiny_cfg()
    save_checkpoint(tmp_path / "m", build_mae(cfg).state_dict(), make_meta("stage1", cfg, 1, {}, {}))
    with pytest.raises(MaskelError, match="stage1 checkpoint, but a stage2"):
        load_generator(tmp_path / "m.safetensors")
    with pytest.raises(MaskelError, match="trained at 32px"):
        load_mae(tmp_path / "m", resolution=64)
    mae, meta = load_mae(tmp_path / "m.json", resolution=32)
    assert not any(p.requires_grad for p in mae.parameters()) and meta["step"] == 1


def test_checkpoint_metadata_is_validated(tmp_path: Path):
    cfg = tiny_cfg()
    meta = make_meta("stage1", cfg, 1, {}, {})
    bad = dict(meta)
    del bad["resolution"]
    with pytest.raises(MaskelError, match="lacks resolution"):
        save_checkpoint(tmp_path / "x", {"a": torch.zeros(1)}, bad)
    with pytest.raises(MaskelError, match="unknown checkpoint format"):
        save_checkpoint(tmp_path / "x", {"a": torch.zeros(1)}, dict(meta, format="other/9"))
    for preset in ("upstream-64", "cpu-256", "pix2pix-256"):  # the compared presets: their own shapes are in range
        preset_cfg = load_config(preset)
        preset_cfg.update(styles=["radiograph"], pose_channel=False, num_labels=0)
        save_checkpoint(tmp_path / preset, {"a": torch.zeros(1)}, make_meta("stage1", preset_cfg, 1, {}, {}))
    huge = dict(cfg, mae=dict(cfg["mae"], res_blocks=1000))
    with pytest.raises(MaskelError, match="res_blocks = 1000 is out of range"):
        save_checkpoint(tmp_path / "y", {"a": torch.zeros(1)}, make_meta("stage1", huge, 1, {}, {}))


def test_training_state_round_trip(tmp_path: Path):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    gen, mae, disc = trio(cfg)
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)
    loss, _, _, _ = generator_loss(gen, mae, disc, tiny_batch(cfg), cfg["stage2"]["loss"], False)
    loss.backward()
    opt.step()
    save_state(tmp_path / "state", {"generator": gen}, {"generator": opt}, {"step": 1})
    torch.manual_seed(1)
    gen2 = build_generator(cfg, training=True)
    opt2 = torch.optim.AdamW(gen2.parameters(), lr=1e-3)
    extra = load_state(tmp_path / "state", {"generator": gen2}, {"generator": opt2})
    assert extra == {"step": 1}
    for (k, a), b in zip(gen.state_dict().items(), gen2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k  # EMA codebook buffers included
    s1, s2 = opt.state_dict(), opt2.state_dict()
    for pid in s1["state"]:
        for name, v in s1["state"][pid].items():
            assert torch.equal(v, s2["state"][pid][name])


# --- data -----------------------------------------------------------------------------------


def test_augment_keeps_joints_labels_and_images_aligned():
    r = 32
    rng = np.random.default_rng(3)
    joints = np.zeros((22, 4), np.float32)
    joints[JOINT_INDEX["left_knee"]] = [20.5, 10.5, 1.0, 1.0]
    joints[JOINT_INDEX["right_knee"]] = [6.5, 25.5, 1.0, 1.0]
    mask = np.zeros((r, r), np.float32)
    xray = np.zeros((1, r, r), np.float32)
    labels = np.zeros((r, r), np.uint8)
    for j, lab in ((JOINT_INDEX["left_knee"], 2), (JOINT_INDEX["right_knee"], 3)):
        x, y = int(joints[j, 0]), int(joints[j, 1])
        xray[0, y - 1 : y + 2, x - 1 : x + 2] = 1.0
        labels[y - 1 : y + 2, x - 1 : x + 2] = lab
        mask[y - 2 : y + 3, x - 2 : x + 3] = 1.0
    mirror = mirror_label_table(LABEL_NAMES)
    cfg = AugmentConfig(flip=1.0, scale=0.1, shift=0.05, rotate_deg=10.0)
    m2, x2, l2, j2 = augment_sample(rng, cfg, mask, xray, labels, joints, mirror)
    for name, lab in (("left_knee", 2), ("right_knee", 3)):
        jx, jy = j2[JOINT_INDEX[name], :2]
        ys, xs = np.nonzero(l2 == lab)
        # after the flip, the character's left knee is where the right one was drawn: the label
        # id and the joint name moved together, and the label blob sits on the joint
        assert abs(xs.mean() + 0.5 - jx) < 1.0 and abs(ys.mean() + 0.5 - jy) < 1.0, name
        assert x2[0, int(jy), int(jx)] > 0.5 and m2[int(jy), int(jx)] == 1.0
    assert j2[JOINT_INDEX["left_knee"], 0] > r / 2 - 8  # came from the right knee near x = 26


def test_split_keeps_the_views_of_one_body_together(tmp_path: Path):
    root = write_manifest_dataset(tmp_path / "d", n=24, size=40, body_group=4)
    data = load_paired(root, 32, progress=False)
    train, val = split_indices([x.split_key for x in data.samples], 0.3)
    assert val and train
    for i in val:
        assert all(j in val for j in range(len(data.samples)) if j // 4 == i // 4), (i, val)
    loose = load_paired(write_manifest_dataset(tmp_path / "e", n=24, size=40), 32, progress=False)
    assert len({x.split_key for x in loose.samples}) == 24  # no body recorded: each sample its own group


def test_dataset_reads_frames_and_splits(tmp_path: Path):
    root = write_manifest_dataset(tmp_path / "d", n=10, size=40)
    data = load_paired(root, 32, progress=False)
    assert data.styles == ["radiograph", "dxa"] and data.num_labels == 4 and data.has_joints
    s = data.samples[0]
    assert s.mask.shape == (32, 32) and s.xray.shape == (2, 32, 32) and s.labels.shape == (32, 32)
    train, val = split_indices([x.id for x in data.samples], 0.3)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 10 and val
    assert split_indices([x.id for x in data.samples], 0.3) == (train, val)
    view = TrainView(data, train, seed=1, augment=AugmentConfig(), resolution=32)
    a, b = view[0], view[0]
    assert all(torch.equal(a[k], b[k]) for k in a)  # per-sample randomness is derived, not drawn
    view.set_epoch(1)
    assert any(not torch.equal(a[k], view[0][k]) for k in ("mask", "xray"))
    assert a["pose"].shape == (LIMB_CHANNELS, 32, 32) and a["pose"].max() > 0  # joints were drawn
    cropped = TrainView(data, train, seed=1, augment=AugmentConfig(), resolution=32, crop=16)
    c = cropped[0]
    assert c["mask"].shape == (1, 16, 16) and c["pose"].shape == (LIMB_CHANNELS, 16, 16) and c["xray"].shape == (2, 16, 16)
    assert c["mask"].sum() > 0  # crops are centred on the body
    with pytest.raises(MaskelError, match="multiple of 8"):
        TrainView(data, train, seed=1, augment=None, resolution=32, crop=12)


def test_pose_dropout_removes_the_joints():
    joints = np.zeros((22, 4), np.float32)
    joints[0] = [5, 5, 1, 1]
    args = (np.ones((8, 8), np.float32), np.zeros((1, 8, 8), np.float32), np.zeros((8, 8), np.uint8), joints, mirror_label_table({}))
    rng = np.random.default_rng(0)
    assert augment_sample(rng, AugmentConfig(flip=0, scale=0, shift=0, rotate_deg=0, pose_dropout=1.0), *args)[3] is None
    kept = augment_sample(rng, AugmentConfig(flip=0, scale=0, shift=0, rotate_deg=0, pose_dropout=0.0), *args)[3]
    assert np.array_equal(kept, joints)


def test_radiograph_from_dxa_composes_bone_into_the_radiograph(tmp_path: Path):
    cfg = tiny_cfg()
    cfg["generator"] = {**cfg["generator"], "radiograph_from_dxa": True}
    gen = build_generator(cfg, training=True)
    plain = build_generator(tiny_cfg(), training=True)
    plain.load_state_dict({k: v for k, v in gen.state_dict().items() if k != "bone_beta"})
    batch = tiny_batch(cfg)
    out, ref = gen(batch["mask"], batch["pose"])["xray"], plain(batch["mask"], batch["pose"])["xray"]
    r0, d = ref[:, 0], ref[:, 1]
    assert torch.allclose(out[:, 1], d)  # DXA unchanged
    assert torch.allclose(out[:, 0], 1 - (1 - r0) * torch.exp(-gen.bone_beta * d), atol=1e-6)
    assert bool((out[:, 0] >= r0 - 1e-6).all()) and float((out[:, 0] * (1 - F.max_pool2d(batch["mask"], 3, 1, 1))[:, 0]).abs().max()) == 0.0
    out[:, 0].sum().backward()
    assert gen.bone_beta.grad is not None and float(gen.bone_beta.grad) > 0  # bone raises the radiograph
    save_checkpoint(tmp_path / "g", gen.state_dict(), make_meta("stage2", cfg, 1, {}, {"samples": 0}))
    loaded, _ = load_generator(tmp_path / "g.safetensors")
    with torch.no_grad():
        assert torch.allclose(loaded(batch["mask"], batch["pose"])["xray"], gen.eval()(batch["mask"], batch["pose"])["xray"], atol=1e-6)
    with pytest.raises(ValueError, match="both the radiograph and dxa"):
        build_generator({**tiny_cfg(styles=("dxa",)), "generator": cfg["generator"]})


def test_limb_maps_drawn_in_the_crop_equal_the_whole_frame_cropped(tmp_path: Path):
    data = load_paired(write_manifest_dataset(tmp_path / "d", n=6, size=40), 32, progress=False)
    idx = list(range(len(data.samples)))
    whole, cropped = TrainView(data, idx, 1, None, 32), TrainView(data, idx, 1, None, 32, crop=16)
    drawn = 0.0
    for i in idx:
        c = cropped[i]
        drawn = max(drawn, float(c["pose"].max()))
        rng = np.random.default_rng([1, 0, i])  # the window TrainView drew for sample i
        rows, cols = cropped._crop_window(rng, data.samples[i].mask.astype(np.float32))
        assert torch.equal(c["pose"], whole[i]["pose"][:, rows, cols])
    assert drawn > 0  # the windows hold limbs, so the comparison is not of empty maps
    bare = TrainView(data, idx, 1, None, 32, crop=16, limbs=False)[0]
    assert bare["pose"].shape == (0, 16, 16) and bare["mask"].shape == (1, 16, 16)


def test_stage2_best_checkpoint_pays_for_blur():
    cfg = tiny_cfg()
    cfg["stage2"] = dict(cfg["stage2"], min_sharpness=0.75)
    task = Stage2(cfg, Placement(torch.device("cpu")), None)
    sharp, blurred = {"ssim_body": 0.84, "sharpness": 0.78}, {"ssim_body": 0.85, "sharpness": 0.70}
    assert task.ranking(sharp) < task.ranking(blurred)  # 0.05 short of the floor costs 0.05 SSIM
    assert task.ranking({"ssim_body": 0.86, "sharpness": 0.74}) < task.ranking(sharp)
    cfg["stage2"]["min_sharpness"] = 0.0
    assert Stage2(cfg, Placement(torch.device("cpu")), None).ranking(blurred) < task.ranking(sharp)


def test_weight_average_lerps_float_tensors_and_copies_flags():
    class Held(torch.nn.Module):
        def __init__(self, value: float, flag: bool):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.full((3,), value))
            self.register_buffer("codes", torch.full((2,), value))
            self.register_buffer("initted", torch.tensor(flag))

    live, held = Held(1.0, True), frozen_copy(Held(0.0, False))
    ema_update(held, live, decay=0.75)
    assert torch.allclose(held.weight, torch.full((3,), 0.25)) and torch.allclose(held.codes, torch.full((2,), 0.25))
    assert bool(held.initted) and not held.weight.requires_grad and not held.training
    ema_update(held, live, decay=0.0)
    assert torch.equal(held.weight, live.weight.detach())


# --- the bottleneck skip and the mirror average ---------------------------------------------


def test_the_bottleneck_skip_starts_at_zero_and_then_carries_the_encoders_coarsest_features():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    plain = build_generator(cfg).eval()
    cfg["generator"]["bottleneck_skip"] = True
    skipped = build_generator(cfg).eval()
    missing, unexpected = skipped.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("decoder.bottleneck_proj.") for k in missing)
    batch = tiny_batch(cfg, b=2)
    with torch.no_grad():
        assert torch.equal(plain(batch["mask"], batch["pose"])["xray"], skipped(batch["mask"], batch["pose"])["xray"])
        torch.nn.init.normal_(skipped.decoder.bottleneck_proj.weight)
        q_fixed = skipped(batch["mask"], batch["pose"], internals=True)
        assert not torch.allclose(q_fixed["xray"], plain(batch["mask"], batch["pose"])["xray"])
        # the same quantised codes, other coarse features: only the skip can carry the difference
        latent, levels = skipped.forward_encoder(q_fixed["cond"])
        q, _, _ = skipped.quantize(latent)
        other = [*levels[:-1], levels[-1] + 1.0]
        a, _ = skipped.forward_decoder(q, levels, batch["mask"])
        b, _ = skipped.forward_decoder(q, other, batch["mask"])
        assert not torch.allclose(a, b)


def test_limb_maps_of_the_mirrored_joints_are_the_flipped_maps_in_their_partners_channels():
    from maskel.data.joints import JOINT_MIRROR, LIMB_MIRROR
    from maskel.data.posemap import render_limb_maps

    r = 64
    joints = np.zeros((len(JOINT_INDEX), 4), np.float32)
    rng = np.random.default_rng(3)
    joints[:, :2] = rng.uniform(4, r - 4, size=(len(JOINT_INDEX), 2))
    joints[:, 2] = rng.uniform(2.0, 4.0, size=len(JOINT_INDEX))
    joints[:, 3] = 1.0
    mirrored = joints[JOINT_MIRROR].copy()
    mirrored[:, 0] = r - mirrored[:, 0]
    expected = render_limb_maps(joints, r)[LIMB_MIRROR][..., ::-1]
    assert np.allclose(render_limb_maps(mirrored, r), expected, atol=1e-6)
    assert not np.allclose(render_limb_maps(joints, r)[..., ::-1], expected)  # the channels do swap


def test_the_mirror_average_is_the_mean_of_both_drawings_and_mirror_symmetric():
    from maskel.data.joints import LIMB_MIRROR

    cfg = tiny_cfg()
    torch.manual_seed(1)
    gen = build_generator(cfg).eval()
    batch = tiny_batch(cfg, b=2)
    mask, limbs = batch["mask"], batch["pose"]
    mirror_limbs = limbs[:, torch.as_tensor(LIMB_MIRROR)].flip(-1)
    with torch.no_grad():
        once, twice = gen(mask, limbs)["xray"], gen.forward_mirror_average(mask, limbs, labels=True)
        mirror_once = gen(mask.flip(-1), mirror_limbs)["xray"]
        assert torch.allclose(twice["xray"], 0.5 * (once + mirror_once.flip(-1)), atol=1e-6)
        assert not torch.allclose(twice["xray"], once, atol=1e-3)
        assert torch.allclose(gen.forward_mirror_average(mask.flip(-1), mirror_limbs)["xray"], twice["xray"].flip(-1), atol=1e-6)
        assert torch.allclose(twice["labels"], gen(mask, limbs, labels=True)["labels"], atol=1e-6)
        assert gen.forward_mirror_average(mask, None)["xray"].shape == once.shape
