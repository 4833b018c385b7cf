"""Run inside real Blender (Debian 3.4: blender -b -P; 4.5: the bpy wheel's python). Installs the add-on
from its built zip, adds and poses the mannequin, runs Generate X-ray against a real server and prints
MASKEL_RESULT {json} lines for tests/test_blender_addon.py to assert on.

Args after "--": --zip Z --server URL --down-url URL --mannequin server|PATH --work DIR --save-blend PATH
--margin PX [--host-python PY --checkpoint CKPT] [--skeleton]
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import threading
import time
import traceback

import bpy
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Euler, Vector

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bl_setup import add_mannequin, install_addon, joint_bone  # noqa: E402


def emit(**kw):
    print("MASKEL_RESULT " + json.dumps(kw), flush=True)


def parse():
    p = argparse.ArgumentParser()
    for a in ("--zip", "--server", "--down-url", "--mannequin", "--work", "--save-blend"):
        p.add_argument(a)
    p.add_argument("--skeleton", action="store_true", help="the server can build the phantom (render extras)")
    p.add_argument("--margin", type=int, default=3)
    p.add_argument("--host-python", default="")
    p.add_argument("--checkpoint", default="")
    return p.parse_args(sys.argv[sys.argv.index("--") + 1 :])


def install(args):
    """Install from the built zip (the same file on every version); returns the add-on's package module."""
    name = install_addon(args.zip)
    where = (os.path.join(os.environ["BLENDER_USER_EXTENSIONS"], "user_default") if name.startswith("bl_ext.")
             else os.path.join(os.environ["BLENDER_USER_SCRIPTS"], "addons"))
    mod = sys.modules[name]
    emit(installed=name, addon_file=mod.__file__, blender=list(bpy.app.version),
         install_dir=sorted(e for e in os.listdir(where) if not e.startswith(".")))  # fmt: skip
    return mod, name


def snapshot(scene):
    r, sh, vs = scene.render, scene.display.shading, scene.view_settings
    return {
        "engine": r.engine, "res": [r.resolution_x, r.resolution_y, r.resolution_percentage],
        "film_transparent": r.film_transparent, "filepath": r.filepath, "dither": round(r.dither_intensity, 4),
        "format": [r.image_settings.file_format, r.image_settings.color_mode, r.image_settings.color_depth],
        "use_compositing": r.use_compositing, "use_stamp": r.use_stamp,
        "light": sh.light, "color_type": sh.color_type, "single_color": [round(c, 4) for c in sh.single_color],
        "cavity": sh.show_cavity, "render_aa": scene.display.render_aa,
        "view_transform": vs.view_transform, "look": vs.look, "exposure": vs.exposure,
        "camera": scene.camera.name if scene.camera else None,
        "hide_render": {o.name: o.hide_render for o in scene.objects},
    }  # fmt: skip


def look_at(cam, target):
    direction = Vector(target) - cam.location
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()


def overlay_corners_uv(scene, ob, cam):
    """Where the corners of the picture Blender draws for an Image Empty land in the camera frame.

    Blender's rule (overlay_image.cc): the image's long side spans ``empty_display_size``, the other
    side keeps the image aspect, and ``empty_image_offset`` is the bottom-left corner in those units.
    """
    bpy.context.view_layer.update()
    w, h = ob.data.size
    ax, ay = (1.0, h / w) if w > h else (w / h, 1.0)
    sx, sy = ob.empty_display_size * ax, ob.empty_display_size * ay
    ox, oy = ob.empty_image_offset[0] * sx, ob.empty_image_offset[1] * sy
    local = [(ox, oy), (ox + sx, oy), (ox + sx, oy + sy), (ox, oy + sy)]
    return [list(world_to_camera_view(scene, cam, ob.matrix_world @ Vector((x, y, 0.0))))[:2] for x, y in local]


def overlay_of(scene, cam):
    return next(o for o in scene.objects if o.get("maskel_plane") == cam.name)


def overlay_state(ob):
    return {"type": ob.type, "display": ob.empty_display_type, "image": ob.data.name if ob.data else None,
            "visible": ob.visible_get(), "depth": ob.empty_image_depth, "alpha": round(ob.color[3], 4),
            "use_alpha": ob.use_empty_image_alpha, "persp": ob.show_empty_image_perspective,
            "ortho": ob.show_empty_image_orthographic, "hide_viewport": ob.hide_viewport}  # fmt: skip


def image_gray(path):
    img = bpy.data.images.load(path, check_existing=False)
    try:
        w, h = img.size
        from array import array

        px = array("f", bytes(4 * w * h * 4))
        img.pixels.foreach_get(px)
        return w, h, px[0::4], px[3::4]
    finally:
        bpy.data.images.remove(img)


def outside_count(w, h, mask_alpha, xray, margin):
    """X-ray pixels > 0 farther than ``margin`` px from any silhouette pixel."""
    bad = 0
    for i, v in enumerate(xray):
        if v <= 1.5 / 255 or mask_alpha[i] >= 0.5:
            continue
        y, x = divmod(i, w)
        near = any(
            mask_alpha[yy * w + xx] >= 0.5
            for yy in range(max(0, y - margin), min(h, y + margin + 1))
            for xx in range(max(0, x - margin), min(w, x + margin + 1))
        )
        bad += not near
    return bad


def main():
    args = parse()
    os.makedirs(args.work, exist_ok=True)
    mod, name = install(args)
    pipeline = sys.modules[name + ".pipeline"]
    silhouette = sys.modules[name + ".silhouette"]
    client_mod = sys.modules[name + ".core.client"]
    prefs = bpy.context.preferences.addons[name].preferences
    prefs.server_url = args.server
    prefs.timeout = 120

    # Fresh scene with things the add-on must leave alone.
    scene = bpy.context.scene
    for ob in list(scene.objects):
        bpy.data.objects.remove(ob)
    other = bpy.data.objects.new("Other", bpy.data.meshes.new("Other"))
    hidden = bpy.data.objects.new("HiddenProp", bpy.data.meshes.new("HiddenProp"))
    scene.collection.objects.link(other)
    scene.collection.objects.link(hidden)
    hidden.hide_render = True
    r = scene.render
    r.engine = "CYCLES"
    r.resolution_x, r.resolution_y, r.resolution_percentage = 640, 480, 50
    r.film_transparent = False
    r.filepath = "//renders/shot_"
    r.image_settings.file_format = "JPEG"
    scene.view_settings.view_transform = "Filmic"
    scene.view_settings.exposure = 0.5
    scene.display.shading.light = "STUDIO"

    # Mannequin, through the operator (server or file).
    res, arm, jmap = add_mannequin(scene, args.mannequin)
    emit(mannequin_op=sorted(res), character=arm.name if arm else None)
    body = [o for o in scene.objects if o.parent == arm and o.type == "MESH"][0]
    emit(mannequin_bones=len(arm.data.bones), mannequin_verts=len(body.data.vertices),
         vertex_groups=len(body.vertex_groups), armature_modifier=any(m.type == "ARMATURE" and m.object == arm
                                                                      for m in body.modifiers))  # fmt: skip

    # Pose: rotate a few bones found through the mannequin's own joint map.
    posed = {}
    for joint, angle in (("left_shoulder", (0, 1.0, 0)), ("right_knee", (0.8, 0, 0)), ("spine", (0.2, 0, 0))):
        pb = joint_bone(arm, jmap, joint)
        pb.rotation_mode = "XYZ"
        pb.rotation_euler = Euler(angle)
        posed[joint] = pb.name
    bpy.context.view_layer.update()
    emit(posed=posed)

    # Perspective scene camera looking at the body.
    cam = bpy.data.objects.new("ShotCam", bpy.data.cameras.new("ShotCam"))
    scene.collection.objects.link(cam)
    cam.location = (0.8, -5.0, 1.1)
    look_at(cam, (0, 0, 0.9))
    cam.data.lens = 35
    cam.data.shift_x = 0.05
    scene.camera = cam
    scene.maskel.resolution = "256"
    bpy.context.view_layer.update()

    before = snapshot(scene)
    res = bpy.ops.maskel.generate("INVOKE_DEFAULT")
    after = snapshot(scene)
    ov = overlay_of(scene, cam)
    after["hide_render"].pop(ov.name)  # the new overlay is the only new object
    emit(generate=sorted(res), restored=before == after, diff=[k for k in before if before[k] != after[k]],
         overlay=overlay_state(ov), overlay_uv=overlay_corners_uv(scene, ov, cam), overlay_parent=ov.parent.name,
         background=[b.image.name for b in cam.data.background_images if b.image],
         image_size=list(bpy.data.images[f"MaSkel X-ray {cam.name}"].size))

    # The overlay follows the camera: aspect, lens, shift and sensor changes refit it (depsgraph handler).
    refit = {}
    for label, change in (("aspect", lambda: setattr(scene.render, "resolution_x", 800)),
                          ("lens", lambda: setattr(cam.data, "lens", 50.0)),
                          ("shift", lambda: setattr(cam.data, "shift_y", -0.1)),
                          ("sensor", lambda: setattr(cam.data, "sensor_width", 24.0)),
                          ("moved", lambda: setattr(cam, "location", (1.0, -6.0, 1.3)))):  # fmt: skip
        change()
        bpy.context.view_layer.update()
        refit[label] = overlay_corners_uv(scene, ov, cam)
    scene.render.resolution_x, cam.data.lens, cam.data.shift_y, cam.data.sensor_width = 640, 35, 0.0, 36.0
    cam.location = (0.8, -5.0, 1.1)
    bpy.context.view_layer.update()
    scene.maskel.opacity = 0.35
    scene.maskel.in_front = False
    display = overlay_state(ov)
    scene.maskel.opacity, scene.maskel.in_front = 0.8, True
    emit(refit_uv=refit, display_changed=display,
         background_alpha=[round(b.alpha, 3) for b in cam.data.background_images if b.image])

    # Settings restored when the render itself fails inside the context manager.
    before = snapshot(scene)
    try:
        with silhouette.silhouette_setup(scene, cam, [body], 64, 64, os.path.join(args.work, "x.png")):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    emit(restored_on_error=snapshot(scene) == before)

    # The threaded path (worker thread + main-thread apply), keeping files to compare.
    client = client_mod.MaskelClient(args.server, timeout=120)
    job = pipeline.XrayJob(scene, arm, [cam], client, resolution=256, style="radiograph", out_dir=args.work)
    stages = [(job.stage, job.progress)]
    job.prepare()
    stages.append((job.stage, job.progress))
    worker = threading.Thread(target=job.fetch_safe)
    worker.start()
    while worker.is_alive():  # what the progress bar shows while waiting
        if (job.stage, job.progress) != stages[-1]:
            stages.append((job.stage, job.progress))
        time.sleep(0.002)
    stages.append((job.stage, job.progress))
    emit(thread_error=job.error, thread_done=job.done)
    job.apply()
    stages.append((job.stage, job.progress))
    emit(progress_stages=stages)
    v = job.views[0]
    w, h, _, alpha = image_gray(v.mask_path)
    xw, xh, xray, _ = image_gray(v.xray_path)
    partial = sum(1 for a in alpha if 0.0 < a < 1.0)
    inside = {}
    for jn in ("pelvis", "chest", "head"):
        j = next(j for j in v.joints["joints"] if j["name"] == jn)
        px, py = int(j["x"]), int(j["y"])
        inside[jn] = alpha[(h - 1 - py) * w + px] >= 0.5  # Blender pixels start at the bottom row
    emit(mask_size=[w, h], xray_size=[xw, xh], mask_partial=partial, mask_body=sum(1 for a in alpha if a >= 0.5),
         xray_nonzero=sum(1 for x in xray if x > 1.5 / 255), xray_outside=outside_count(w, h, alpha, xray, args.margin),
         rig=v.rig, n_joints=len(v.joints["joints"]), joints_inside=inside, timings=v.timings)  # fmt: skip

    # Front + side X-ray cameras in one click.
    res_cams = bpy.ops.maskel.create_cameras()
    res_gen = bpy.ops.maskel.generate("INVOKE_DEFAULT")
    xcams = pipeline.xray_cameras(scene)
    uv = {c.get("maskel_xray_camera"): overlay_corners_uv(scene, overlay_of(scene, c), c) for c in xcams}
    emit(create_cameras=sorted(res_cams), generate_two=sorted(res_gen), xray_cameras=[c.name for c in xcams],
         xcam_overlay_uv=uv, xcam_types=[c.data.type for c in xcams])

    # User-facing errors.
    errors = {}
    scene.maskel.use_xray_cameras = False
    saved_cam = scene.camera
    scene.camera = None
    try:
        pipeline.XrayJob(scene, arm, [], client)
    except pipeline.XrayError as e:
        errors["no_camera"] = str(e)
    scene.camera = saved_cam
    away = bpy.data.objects.new("AwayCam", bpy.data.cameras.new("AwayCam"))
    scene.collection.objects.link(away)
    away.location = (0, -5, 1)
    away.rotation_euler = (0, 0, 0)  # looking straight down, the body is not in view
    bpy.context.view_layer.update()
    try:
        pipeline.XrayJob(scene, arm, [away], client).prepare()
    except pipeline.XrayError as e:
        errors["outside_view"] = str(e)
    try:
        pipeline.XrayJob(scene, arm, [cam], client_mod.MaskelClient(args.down_url, timeout=5)).run_sync()
    except client_mod.ServerError as e:
        errors["server_down"] = str(e)
    coll = bpy.data.collections.new("HiddenBody")
    scene.collection.children.link(coll)
    for c in list(body.users_collection):
        c.objects.unlink(body)
    coll.objects.link(body)
    coll.hide_render = True  # hidden from render on purpose: still X-rayed (documented policy)
    hidden_job = pipeline.XrayJob(scene, arm, [cam], client)
    hidden_job.prepare()
    hidden_mask = hidden_job.views[0].mask_pixels
    hidden_job.cleanup()
    coll.hide_render = False
    bpy.context.view_layer.layer_collection.children[coll.name].exclude = True
    try:
        pipeline.XrayJob(scene, arm, [cam], client).prepare()
    except pipeline.XrayError as e:
        errors["excluded"] = str(e)
    bpy.context.view_layer.layer_collection.children[coll.name].exclude = False
    cam.data.clip_end = 2.0  # the character stands ~5 m away
    try:
        pipeline.XrayJob(scene, arm, [cam], client).prepare()
    except pipeline.XrayError as e:
        errors["clip_end"] = str(e)
    cam.data.clip_end = 100.0
    scene.maskel.quality = "super_resolution"  # the panel's setting reaches the server, started without --sr
    try:
        sys.modules[name + ".operators"].make_job(scene).run_sync(show=False)
        errors["no_sr"] = None
    except client_mod.ServerError as e:
        errors["no_sr"] = f"{e.code}: {e}"
    scene.maskel.quality = "standard"
    emit(hidden_collection_mask=hidden_mask, hidden_collection_restored=not coll.hide_render)
    scene.maskel.camera = away
    before = snapshot(scene)
    try:  # an operator that reports an ERROR raises RuntimeError with that report when called from Python
        bpy.ops.maskel.generate("INVOKE_DEFAULT")
        errors["operator"] = None
    except RuntimeError as e:
        errors["operator"] = str(e)
    emit(errors=errors, restored_after_error=snapshot(scene) == before)
    scene.maskel.camera = None
    bpy.data.objects.remove(away)

    # Clothing words are whole words: "Bradley" is a body, "Bra_01" and "Female_Casualsuit01" are not.
    charmod = sys.modules[name + ".character"]
    words = {}
    for n in ("Bradley", "Bra_01", "Female_Casualsuit01", "Shoes.L", "Hairband Mesh"):
        ob = bpy.data.objects.new(n, bpy.data.meshes.new(n))
        words[n] = charmod.is_body(ob, True)
        bpy.data.objects.remove(ob)
    emit(clothing_is_body=words)

    live_scenario(scene, arm, posed, cam, name)
    if args.skeleton:
        skeleton_scenario(scene, arm, jmap, posed, name)
        other_rigs_scenario(scene, arm, name)

    # Animate a bone over frames 1-3 and save for the batch tests.
    pb = arm.pose.bones[posed["left_shoulder"]]
    for f, a in ((1, 0.2), (2, 0.8), (3, 1.4)):
        pb.rotation_euler = Euler((0, a, 0))
        pb.keyframe_insert("rotation_euler", frame=f)
    scene.frame_start, scene.frame_end = 1, 3
    bpy.ops.wm.save_as_mainfile(filepath=args.save_blend)
    emit(saved=args.save_blend, addon_dir=os.path.dirname(mod.__file__))

    if args.host_python:
        local_server(args, name, client_mod)
    emit(leftover_temp=sorted(os.path.basename(p) for p in glob.glob(os.path.join(tempfile.gettempdir(), "maskel_*"))))


def live_scenario(scene, arm, posed, cam, name):
    """Live mode driven tick by tick (headless Blender never fires timers): pose changes -> new X-rays,
    no request while nothing changes, an answer from a switched-off session is dropped."""
    live = sys.modules[name + ".live"]
    scene.maskel.use_xray_cameras = False
    scene.maskel.camera = cam
    scene.maskel.live = True
    pb = arm.pose.bones[posed["left_shoulder"]]

    def run_until(cond, limit=120.0):
        t0 = time.monotonic()
        while not cond() and time.monotonic() - t0 < limit:
            live.tick()
            time.sleep(0.01)
        return cond()

    s = live.session
    first = run_until(lambda: s.updates >= 1)
    image = bpy.data.images[f"MaSkel X-ray {cam.name}"]
    before = image.name, len(bpy.data.images)
    t0 = time.monotonic()
    n_changes = 5
    for k in range(n_changes):
        want = s.updates + 1
        pb.rotation_euler = Euler((0, 0.3 + 0.2 * k, 0))
        bpy.context.view_layer.update()
        live.mark_changed()
        run_until(lambda want=want: s.updates >= want)
    rate = n_changes / (time.monotonic() - t0)
    idle_updates = s.updates
    for _ in range(20):  # nothing changes: no new request
        live.tick()
        time.sleep(0.01)
    idle_extra = s.updates - idle_updates + (1 if s.job is not None else 0)
    pb.rotation_euler = Euler((0, 1.2, 0))
    bpy.context.view_layer.update()
    live.mark_changed()
    live.session.last_start = 0.0
    live.tick()  # a request is now in flight
    in_flight = s.job is not None
    dropped_before = s.dropped
    scene.maskel.live = False  # switching off drops its answer
    emit(live_first=first, live_updates=s.updates, live_rate=round(rate, 2), live_idle_extra=idle_extra,
         live_in_flight=in_flight, live_dropped=s.dropped - dropped_before, live_errors=s.error,
         live_images=len(bpy.data.images) - before[1], live_timer_off=not bpy.app.timers.is_registered(live.tick))
    pb.rotation_euler = Euler((0, 1.0, 0))
    bpy.context.view_layer.update()


MIXAMO_CHAIN = [  # bone, parent, head joint, tail joint (None: a short stub past the head)
    ("Hips", None, "pelvis", "spine"), ("Spine", "Hips", "spine", "chest"), ("Spine1", "Spine", "chest", "neck"),
    ("Spine2", "Spine1", "chest", "neck"), ("Neck", "Spine2", "neck", "head"), ("Head", "Neck", "head", "head_top"),
    ("HeadTop_End", "Head", "head_top", None),
]  # fmt: skip
for _side, _s in (("Left", "left"), ("Right", "right")):
    MIXAMO_CHAIN += [
        (f"{_side}Shoulder", "Spine2", "neck", f"{_s}_shoulder"), (f"{_side}Arm", f"{_side}Shoulder", f"{_s}_shoulder", f"{_s}_elbow"),
        (f"{_side}ForeArm", f"{_side}Arm", f"{_s}_elbow", f"{_s}_wrist"), (f"{_side}Hand", f"{_side}ForeArm", f"{_s}_wrist", f"{_s}_hand"),
        (f"{_side}HandMiddle1", f"{_side}Hand", f"{_s}_hand", None), (f"{_side}UpLeg", "Hips", f"{_s}_hip", f"{_s}_knee"),
        (f"{_side}Leg", f"{_side}UpLeg", f"{_s}_knee", f"{_s}_ankle"), (f"{_side}Foot", f"{_side}Leg", f"{_s}_ankle", f"{_s}_foot"),
        (f"{_side}ToeBase", f"{_side}Foot", f"{_s}_foot", None),
    ]  # fmt: skip


def build_armature(name, joints, chain, prefix=""):
    """An armature whose bones sit between the given world joints (a rig built as Mixamo names it)."""
    arm = bpy.data.objects.new(name, bpy.data.armatures.new(name))
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    eb = arm.data.edit_bones
    for bone, parent, a, b in chain:
        e = eb.new(prefix + bone)
        e.head = Vector(joints[a])
        e.tail = Vector(joints[b]) if b else e.head + Vector((0.0, 0.0, 0.05))
        if parent:
            e.parent = eb[prefix + parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    return arm


def other_rigs_scenario(scene, mannequin, name):
    """Rigs built here as users have them: Mixamo-named (mixamorig: namespace) and Rigify's human metarig."""
    charmod = sys.modules[name + ".character"]
    out = {}
    joints = charmod.joint_locations(mannequin, rest=True)[1]
    rigs = {"mixamo": build_armature("MixamoRig", joints, MIXAMO_CHAIN, prefix="mixamorig:")}
    try:
        bpy.ops.preferences.addon_enable(module="rigify")
        bpy.ops.object.armature_human_metarig_add()
        rigs["rigify"] = bpy.context.active_object
    except (RuntimeError, AttributeError) as e:  # rigify not shipped with this Blender
        out["rigify_missing"] = str(e)
    for kind, rig in rigs.items():
        scene.maskel.character = rig
        detected = charmod.resolve_joints(rig)
        res = bpy.ops.maskel.add_skeleton()
        obs = [o for o in scene.objects if o.get("maskel_skeleton") == rig.name]
        hum = next((o for o in obs if o.name.startswith("humerus_left")), None)
        out[kind] = {"rig": detected[0], "joints": len(detected[1]), "op": sorted(res), "bones": len(obs),
                     "parented": sum(o.parent == rig and o.parent_type == "BONE" for o in obs),
                     "humerus_bone": hum.parent_bone if hum else None}  # fmt: skip
    scene.maskel.character = mannequin
    emit(other_rigs=out)


def skeleton_scenario(scene, arm, jmap, posed, name):
    """Add skeleton: the phantom's bones as meshes parented to the rig's bones, following the pose."""
    res = bpy.ops.maskel.add_skeleton()
    bones = [o for o in scene.objects if o.get("maskel_skeleton") == arm.name]
    parented = [o for o in bones if o.parent == arm and o.parent_type == "BONE" and o.parent_bone in arm.pose.bones]
    humerus = bpy.data.objects.get("humerus_left")
    pb = arm.pose.bones[posed["left_shoulder"]]
    bpy.context.view_layer.update()

    def centre(ob):
        pts = [ob.matrix_world @ v.co for v in ob.data.vertices]
        return sum(pts, Vector()) / len(pts)

    def in_bone(p):  # the point in the upper-arm bone's posed frame
        return (arm.matrix_world @ pb.matrix).inverted() @ p

    c0 = centre(humerus)
    local0 = in_bone(c0)
    rest_pose = pb.rotation_euler.copy()
    pb.rotation_euler = Euler((0.0, 0.0, 0.0))
    bpy.context.view_layer.update()
    c_rest = centre(humerus)
    elbow = joint_bone(arm, jmap, "left_elbow")
    head, tail = arm.matrix_world @ pb.head, arm.matrix_world @ elbow.head  # shoulder, elbow
    pb.rotation_euler = Euler((0.9, 0.0, 0.4))
    bpy.context.view_layer.update()
    c1 = centre(humerus)
    local1 = in_bone(c1)
    pb.rotation_euler = rest_pose
    bpy.context.view_layer.update()
    # Unrotated, the humerus lies along the upper arm: its centre is near the shoulder-elbow line.
    seg = tail - head
    t = max(0.0, min(1.0, (c_rest - head).dot(seg) / seg.length_squared))
    emit(skeleton_op=sorted(res), skeleton_objects=len(bones), skeleton_parented=len(parented),
         humerus_parent=humerus.parent_bone if humerus else None, humerus_moved=(c1 - c0).length,
         humerus_in_bone_drift=(local1 - local0).length, humerus_off_axis=(head + t * seg - c_rest).length,
         skeleton_in_body_list=any(o.get("maskel_skeleton") for o in sys.modules[name + ".character"].candidate_meshes(arm, scene)))


def local_server(args, name, client_mod):
    """Preferences > Start local server (a child `python -m maskel serve`), then disabling the add-on stops it."""
    prefs = bpy.context.preferences.addons[name].preferences
    prefs.python_path = args.host_python
    prefs.checkpoint = args.checkpoint
    prefs.port = _free_port()
    prefs.start_wait = 180
    res = bpy.ops.maskel.start_server()
    url = prefs.server_url
    health = client_mod.MaskelClient(url, timeout=10).health()
    state = sys.modules[name + ".state"]
    pid = state.local_server.proc.pid
    bpy.ops.preferences.addon_disable(module=name)
    try:
        client_mod.MaskelClient(url, timeout=5).health()
        after = "still answering"
    except client_mod.ServerError as e:
        after = e.code
    emit(local_server=sorted(res), local_url=url, local_health=health.get("version"), local_pid=pid,
         after_disable=after)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


try:
    main()
except Exception:
    traceback.print_exc()
    sys.stdout.flush()
    sys.exit(1)
