"""Generate X-ray: silhouette + joints (main thread) -> server (any thread) -> image + overlay (main thread).

``XrayJob`` splits the work so the operator can run ``fetch`` on a worker thread while Blender's UI
stays responsive; bpy is only touched in ``prepare`` and ``apply``. Batch and headless runs call
the three steps in a row (``run_sync``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field

import bpy
from mathutils import Vector

from . import character as charmod
from . import overlay as overlaymod
from .core import camera as cammath
from .core import rigs
from .core.client import DEFAULT_STYLE, AddonError, MaskelClient, ServerError
from .silhouette import render_silhouette


class XrayError(AddonError):
    """A user-facing failure of the X-ray pipeline in Blender (one line)."""

    default_code = "xray"


XRAY_CAMERA_TAG = "maskel_xray_camera"


@dataclass
class View:
    camera: bpy.types.Object
    res_x: int
    res_y: int
    mask_path: str
    xray_path: str
    depth: float = 0.0
    joints: dict | None = None
    rig: str | None = None
    mask_pixels: int = 0
    timings: dict = field(default_factory=dict)


def silhouette_size(scene: bpy.types.Scene, resolution: int) -> tuple[int, int]:
    """Render size with the scene's frame aspect and the long side = ``resolution``."""
    w = scene.render.resolution_x * scene.render.resolution_percentage / 100
    h = scene.render.resolution_y * scene.render.resolution_percentage / 100
    if w >= h:
        return resolution, max(1, round(resolution * h / w))
    return max(1, round(resolution * w / h)), resolution


def xray_cameras(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """The front and side X-ray cameras made by "Create X-ray cameras", when both exist."""
    cams = {o.get(XRAY_CAMERA_TAG): o for o in scene.objects if o.type == "CAMERA" and o.get(XRAY_CAMERA_TAG)}
    return [cams["front"], cams["side"]] if "front" in cams and "side" in cams else []


def world_bbox(objects: list[bpy.types.Object]) -> list[Vector]:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    pts = []
    for ob in objects:
        ev = ob.evaluated_get(depsgraph)
        pts += [ev.matrix_world @ Vector(c) for c in ev.bound_box]
    return pts


class XrayJob:
    """One Generate X-ray request over one or more cameras."""

    def __init__(self, scene: bpy.types.Scene, character: bpy.types.Object, cameras: list[bpy.types.Object],
                 client: MaskelClient, resolution: int = 512, style: str = DEFAULT_STYLE, seed: int = 0,
                 exclude_clothes: bool = True, out_dir: str | None = None, tag: str = "", sr: bool = False,
                 single_pass: bool = False):  # fmt: skip
        if not cameras:
            raise XrayError("no camera: set a scene camera, pick one in the MaSkel panel, or use Create X-ray cameras")
        for cam in cameras:
            if cam is None or cam.type != "CAMERA":
                raise XrayError(f"{getattr(cam, 'name', cam)!r} is not a camera")
        self.scene, self.character, self.client = scene, character, client
        self.resolution, self.style, self.seed, self.sr = int(resolution), style, int(seed), bool(sr)
        self.single_pass = bool(single_pass)  # no mirror average: the live mode's faster X-ray
        self.exclude_clothes = exclude_clothes
        self.own_dir = out_dir is None
        self.out_dir = out_dir or ""  # a temporary folder is made by prepare() and removed by cleanup()
        self.tag = tag
        self.views: list[View] = []
        self.cameras = cameras
        self.cancel = threading.Event()
        self.done = 0  # finished server requests
        self.error: str | None = None
        self.stage = "queued"  # what the job is doing, for the progress bar (read by the main thread)
        self.progress = 0.0

    @property
    def total(self) -> int:
        return len(self.cameras)

    def _stage(self, stage: str, progress: float) -> None:
        self.stage, self.progress = stage, progress

    # ---- main thread
    def prepare(self) -> None:
        """Render the silhouettes and project the joints; on any failure nothing is left on disk."""
        if self.own_dir and not self.out_dir:
            self.out_dir = tempfile.mkdtemp(prefix="maskel_")
        try:
            self._prepare()
        except BaseException:
            self.cleanup()
            raise

    def _prepare(self) -> None:
        scene = self.scene
        meshes = charmod.body_meshes(self.character, scene, self.exclude_clothes)
        if not meshes:
            raise XrayError(f"{self.character.name!r} has no body meshes (all excluded as clothing?)")
        armature = charmod.find_armature(self.character)
        res_x, res_y = silhouette_size(scene, self.resolution)
        bbox = world_bbox(meshes)
        view_layer = bpy.context.view_layer
        missing = [m.name for m in meshes if view_layer.objects.get(m.name) is None]
        if missing:
            raise XrayError(f"{', '.join(missing)} not in view layer {view_layer.name!r} (its collection is "
                            "excluded): include it, or leave it out of the body in the MaSkel panel")  # fmt: skip
        for i, cam in enumerate(self.cameras):
            self._stage(f"rendering the silhouette from {cam.name}", 0.1 * i / self.total)
            params = overlaymod.camera_params(scene, cam, res_x, res_y)
            pts = overlaymod.to_camera_space(cam, bbox)
            if cammath.bbox_view_overlap(params, pts) <= 0.0:
                raise XrayError(f"the character {self.character.name!r} is outside the view of camera {cam.name!r}")
            safe = bpy.path.clean_name(cam.name)
            view = View(cam, res_x, res_y, os.path.join(self.out_dir, f"mask_{safe}{self.tag}.png"),
                        os.path.join(self.out_dir, f"xray_{safe}{self.tag}.png"))  # fmt: skip
            zs = [p[2] for p in pts]
            view.depth = -(min(zs) + max(zs)) / 2  # the character's centre along the view axis
            if view.depth <= 0:
                raise XrayError(f"the character is behind camera {cam.name!r}")
            stats = render_silhouette(scene, cam, meshes, res_x, res_y, view.mask_path, self.exclude_clothes)
            if stats.body == 0:
                raise XrayError(self._empty_reason(cam, zs))
            view.mask_pixels = stats.body
            if armature is not None:
                view.rig, view.joints = self._joints(armature, cam, params)
            self.views.append(view)
        self._stage("sending the silhouette", 0.1)

    @staticmethod
    def _empty_reason(cam: bpy.types.Object, zs: list[float]) -> str:
        c = cam.data
        near, far = -max(zs), -min(zs)
        if near > c.clip_end:
            return (f"the character is beyond the clip end of camera {cam.name!r} ({near:.3g} m > {c.clip_end:.3g} m): "
                    "raise the camera's Clip End")  # fmt: skip
        if far < c.clip_start:
            return (f"the character is nearer than the clip start of camera {cam.name!r} ({far:.3g} m < "
                    f"{c.clip_start:.3g} m): lower the camera's Clip Start")  # fmt: skip
        return f"empty mask: the character's meshes did not render from {cam.name!r}"

    def _joints(self, armature, cam, params) -> tuple[str | None, dict | None]:
        rig, world = charmod.joint_locations(armature)
        if not world:
            return None, None
        names = list(world)
        cam_pts = overlaymod.to_camera_space(cam, [Vector(world[n]) for n in names])
        points = {}
        for name, p in zip(names, cam_pts, strict=True):
            uvd = cammath.project(params, p)
            if uvd[2] <= 0:
                continue
            x, y = cammath.to_pixels(params, uvd)
            points[name] = (x, y, uvd[2], cammath.in_frame(uvd))
        return rig, rigs.pose_json(points, params.res_x, params.res_y)

    # ---- any thread (no bpy)
    def fetch(self) -> None:
        n = len(self.views)
        for i, view in enumerate(self.views):
            if self.cancel.is_set():
                return
            with open(view.mask_path, "rb") as f:
                mask = f.read()
            self._stage(f"waiting for the server ({view.camera.name})", (0.1 + 0.85 * i / n))
            res = self.client.xray(mask, joints=view.joints, style=self.style, seed=self.seed, sr=self.sr,
                                   mirror_average=False if self.single_pass else None)  # fmt: skip
            tmp = view.xray_path + ".part"
            with open(tmp, "wb") as f:
                f.write(res.xray_png)
            os.replace(tmp, view.xray_path)
            view.timings = res.timings
            self.done += 1
            self._stage(f"received the X-ray for {view.camera.name}", 0.1 + 0.85 * (i + 1) / n)

    def fetch_safe(self) -> None:
        """fetch() for a worker thread: errors are kept in ``self.error`` for the main thread."""
        try:
            self.fetch()
        except ServerError as e:
            self.error = str(e)
        except OSError as e:
            self.error = f"cannot write the X-ray file: {e}"

    # ---- main thread
    def apply(self, opacity: float = 0.8, in_front: bool = True) -> list[bpy.types.Object]:
        self._stage("showing the X-ray", 0.95)
        out = []
        for view in self.views:
            image = overlaymod.load_image(f"MaSkel X-ray {view.camera.name}", view.xray_path)
            out.append(overlaymod.update_overlay(self.scene, view.camera, image, view.depth, opacity, in_front))
        self._stage("done", 1.0)
        return out

    def cleanup(self) -> None:
        if self.own_dir and self.out_dir:
            shutil.rmtree(self.out_dir, ignore_errors=True)

    def run_sync(self, opacity: float = 0.8, in_front: bool = True, show: bool = True) -> list[bpy.types.Object]:
        """prepare + fetch + apply on this thread (headless and batch use); the temporary folder is
        removed afterwards, also on failure (images are packed into the .blend)."""
        try:
            self.prepare()
            self.fetch()
            return self.apply(opacity, in_front) if show else []
        finally:
            self.cleanup()
