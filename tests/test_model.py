"""The MaSkel model parts in process: MAE, generator, checkpoints, GAN gradient isolation,
augmentation alignment, overfitting a fixed batch."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from maskel import MaskelError
from maskel.checkpoint import load_checkpoint, load_state, make_meta, save_checkpoint, save_state
from maskel.data.augment import AugmentConfig, augment_sample, mirror_label_table
from maskel.data.datasets import TrainView, load_paired, split_indices
from maskel.data.joints import JOINT_INDEX
from maskel.models import build_generator, build_mae, load_generator, load_mae
from maskel.models.discriminator import build_discriminator
from maskel.models.losses import discriminator_loss, generator_loss
from maskel.train import load_config
from tests._train_helpers import LABEL_NAMES, write_manifest_dataset


def tiny_cfg(pose: bool = True, styles: tuple[str, ...] = ("radiograph", "dxa"), labels: int = 4) -> dict:
    cfg = load_config("tiny")
    cfg.update(styles=list(styles), pose_channel=pose, num_labels=labels)
    return cfg


def tiny_batch(cfg: dict, b: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    r = cfg["resolution"]
    mask = (torch.rand(b, 1, r, r, generator=g) > 0.5).float()
    return {
        "mask": mask,
        "pose": torch.rand(b, 1, r, r, generator=g),
        "xray": torch.rand(b, len(cfg["styles"]), r, r, generator=g) * mask,
        "labels": torch.randint(0, cfg["num_labels"], (b, r, r), generator=g),
    }


# --- stage 1 --------------------------------------------------------------------------------


def test_mae_latent_is_spatial_and_uses_the_transformer_blocks():
    cfg = tiny_cfg()
    mae = build_mae(cfg).eval()
    x = torch.rand(3, 2, 32, 32)
    z = mae.encode(x)
    assert z.shape == (3, cfg["mae"]["dim"], 8, 8)
    # The blocks matter (upstream computed them and threw the result away).
    other = copy.deepcopy(mae)
    with torch.no_grad():
        other.blocks[-1].mlp[2].weight.add_(0.5)
    assert not torch.allclose(other.encode(x), z)
    # Registered positional embeddings and mask token travel with the weights.
    sd = mae.state_dict()
    assert {"pos_embed", "decoder_pos_embed", "mask_token"} <= set(sd)
    # A patch moved in the image moves its latent column: the layout is spatial.
    out = mae(x)
    assert out["mask"].shape == (3, 64) and int(out["mask"][0].sum()) == 48  # 75% masked
    assert torch.allclose(mae.unpatchify(mae.patchify(x)), x)


def test_mae_loss_only_counts_masked_patches():
    cfg = tiny_cfg()
    mae = build_mae(cfg)
    x = torch.rand(2, 2, 32, 32)
    torch.manual_seed(0)
    out = mae(x)
    target = mae.patchify(x)
    per = ((out["pred"] - target) ** 2).mean(-1)
    expect = (per * out["mask"]).sum() / out["mask"].sum()
    assert torch.allclose(out["loss"], expect)
    rec = mae.patchify(mae.reconstruct(x, out["pred"].detach(), out["mask"]))
    visible = out["mask"] == 0
    assert torch.allclose(rec[visible], target[visible])  # visible patches shown as they are
    assert torch.allclose(rec[~visible], out["pred"].detach()[~visible].clamp(0, 1))


# --- stage 2 --------------------------------------------------------------------------------


@pytest.mark.parametrize("pose", [True, False])
def test_load_generator_shapes_and_ranges(tmp_path: Path, pose: bool):
    cfg = tiny_cfg(pose=pose)
    gen = build_generator(cfg)
    save_checkpoint(tmp_path / "g", gen.state_dict(), make_meta("stage2", cfg, 5, {"ssim": 0.1}, {"samples": 0}))
    loaded, meta = load_generator(tmp_path / "g.safetensors")
    assert not loaded.training and meta["stage"] == "stage2" and meta["styles"] == ["radiograph", "dxa"]
    assert meta["pose_channel"] is pose
    mask = (torch.rand(3, 1, 32, 32) > 0.5).float()
    with torch.no_grad():
        out = loaded(mask, torch.rand(3, 1, 32, 32) if pose else None)
        ref = gen.eval()(mask, torch.zeros(3, 1, 32, 32) if pose else None)
    assert out["xray"].shape == (3, 2, 32, 32)
    assert float(out["xray"].min()) >= 0.0 and float(out["xray"].max()) <= 1.0
    assert out["labels"].shape == (3, 4, 32, 32)
    if pose:  # the pose channel is used
        assert not torch.allclose(out["xray"], ref["xray"])
    else:
        assert torch.equal(out["xray"], ref["xray"])


def test_no_label_head_without_labels():
    gen = build_generator(tiny_cfg(labels=0, styles=("dxa",), pose=False)).eval()
    out = gen(torch.ones(1, 1, 32, 32))
    assert set(out) == {"xray"} and out["xray"].shape == (1, 1, 32, 32)


def test_discriminator_gradients_never_reach_the_generator_and_vice_versa():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    gen, mae, disc = build_generator(cfg), build_mae(cfg).requires_grad_(False), build_discriminator(cfg)
    batch = tiny_batch(cfg)
    w = dict(cfg["stage2"]["loss"], adv=1.0)
    loss, terms, pred = generator_loss(gen, mae, disc, batch, w, True, use_adv=True)
    loss.backward()
    assert "adv" in terms
    assert all(p.grad is None for p in disc.parameters()), "generator step wrote discriminator grads"
    assert all(p.requires_grad for p in disc.parameters()), "discriminator left frozen"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.parameters())
    gen.zero_grad(set_to_none=True)
    d_loss = discriminator_loss(disc, batch, pred, True)
    d_loss.backward()
    assert all(p.grad is None for p in gen.parameters()), "discriminator step leaked into the generator"
    assert all(p.grad is not None for p in disc.parameters())


def test_adversarial_term_changes_generator_gradients():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    gen, mae, disc = build_generator(cfg), build_mae(cfg).requires_grad_(False), build_discriminator(cfg)
    batch = tiny_batch(cfg)
    grads = []
    for use_adv in (False, True):
        gen.zero_grad(set_to_none=True)
        gen.quantizer.eval()  # no EMA update between the two passes
        loss, _, _ = generator_loss(gen, mae, disc, batch, dict(cfg["stage2"]["loss"], adv=1.0), True, use_adv)
        loss.backward()
        grads.append(gen.to_xray.weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_stage2_overfits_a_fixed_batch():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    gen, mae, disc = build_generator(cfg), build_mae(cfg).requires_grad_(False), build_discriminator(cfg)
    batch = tiny_batch(cfg)
    opt = torch.optim.Adam(gen.parameters(), lr=3e-3)
    w = dict(cfg["stage2"]["loss"], adv=0.0)
    first = last = None
    for _ in range(40):
        loss, terms, _ = generator_loss(gen, mae, disc, batch, w, True, use_adv=False)
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
    x = tiny_batch(cfg)["xray"]
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


def test_training_state_round_trip(tmp_path: Path):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    gen = build_generator(cfg)
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)
    loss, _, _ = generator_loss(gen, build_mae(cfg).requires_grad_(False), build_discriminator(cfg), tiny_batch(cfg), cfg["stage2"]["loss"], True, False)
    loss.backward()
    opt.step()
    save_state(tmp_path / "state", {"generator": gen}, {"generator": opt}, {"step": 1})
    torch.manual_seed(1)
    gen2 = build_generator(cfg)
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
    assert a["pose"].max() > 0  # joints were drawn


def test_pose_dropout_removes_the_joints():
    joints = np.zeros((22, 4), np.float32)
    joints[0] = [5, 5, 1, 1]
    args = (np.ones((8, 8), np.float32), np.zeros((1, 8, 8), np.float32), np.zeros((8, 8), np.uint8), joints, mirror_label_table({}))
    rng = np.random.default_rng(0)
    assert augment_sample(rng, AugmentConfig(flip=0, scale=0, shift=0, rotate_deg=0, pose_dropout=1.0), *args)[3] is None
    kept = augment_sample(rng, AugmentConfig(flip=0, scale=0, shift=0, rotate_deg=0, pose_dropout=0.0), *args)[3]
    assert np.array_equal(kept, joints)
