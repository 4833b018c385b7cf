"""Run inside real Blender (Debian 3.4: blender -b -P; 4.5: the bpy wheel's python). Installs the add-on
from its built zip, adds and poses the mannequin, runs Generate X-ray against a real server and prints
MASKEL_RESULT {json} lines for tests/test_blender_addon.py to assert on.

Args after "--": --legacy-zip Z --extension-zip Z --server URL --down-url URL --mannequin server|PATH
--work DIR --save-blend PATH --margin PX
"""

import argparse
import json
import os
import sys
import threading
import traceback

import bpy
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Euler, Vector


def emit(**kw):
    print("MASKEL_RESULT " + json.dumps(kw), flush=True)


def parse():
    p = argparse.ArgumentParser()
    for a in ("--legacy-zip", "--extension-zip", "--server", "--down-url", "--mannequin", "--work", "--save-blend"):
        p.add_argument(a)
    p.add_argument("--margin", type=int, default=3)
    p.add_argument("--host-python", default="")
    p.add_argument("--checkpoint", default="")
    return p.parse_args(sys.argv[sys.argv.index("--") + 1 :])


def install(args):
    """Install from the built zip; returns the add-on's package module."""
    if bpy.app.version >= (4, 2, 0):
        # 4.2+: the extension zip into the "user_default" repository (works headless, no network needed).
        bpy.ops.extensions.package_install_files(filepath=args.extension_zip, repo="user_default",
                                                 enable_on_install=True)  # fmt: skip
        name = "bl_ext.user_default.maskel_xray"
    else:
        bpy.ops.preferences.addon_install(filepath=args.legacy_zip, overwrite=True)
        bpy.ops.preferences.addon_enable(module="maskel_xray")
        name = "maskel_xray"
    mod = sys.modules[name]
    emit(installed=name, addon_file=mod.__file__, blender=list(bpy.app.version))
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


def plane_corners_uv(scene, plane, cam):
    bpy.context.view_layer.update()
    return [list(world_to_camera_view(scene, cam, plane.matrix_world @ v.co))[:2] for v in plane.data.vertices]


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
    if args.mannequin == "server":
        res = bpy.ops.maskel.add_mannequin(source="SERVER")
    else:
        res = bpy.ops.maskel.add_mannequin(source="FILE", filepath=args.mannequin)
    arm = scene.maskel.character
    emit(mannequin_op=sorted(res), character=arm.name if arm else None)
    body = [o for o in scene.objects if o.parent == arm and o.type == "MESH"][0]
    emit(mannequin_bones=len(arm.data.bones), mannequin_verts=len(body.data.vertices),
         vertex_groups=len(body.vertex_groups), armature_modifier=any(m.type == "ARMATURE" and m.object == arm
                                                                      for m in body.modifiers))  # fmt: skip

    # Pose: rotate a few bones found through the mannequin's own joint map.
    jmap = json.loads(arm["maskel_joint_map"])
    posed = {}
    for joint, angle in (("left_shoulder", (0, 1.0, 0)), ("right_knee", (0.8, 0, 0)), ("spine", (0.2, 0, 0))):
        bone = jmap[joint].rpartition(":")[0]
        pb = arm.pose.bones[bone]
        pb.rotation_mode = "XYZ"
        pb.rotation_euler = Euler(angle)
        posed[joint] = bone
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
    plane = next(o for o in scene.objects if o.get("maskel_plane") == cam.name)
    after["hide_render"].pop(plane.name)  # the new plane is the only new object
    emit(generate=sorted(res), restored=before == after, diff=[k for k in before if before[k] != after[k]],
         plane_uv=plane_corners_uv(scene, plane, cam), plane_parent=plane.parent.name,
         background=[b.image.name for b in cam.data.background_images if b.image],
         image_size=list(bpy.data.images[f"MaSkel X-ray {cam.name}"].size), hide_render_plane=plane.hide_render)

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
    job.prepare()
    worker = threading.Thread(target=job.fetch_safe)
    worker.start()
    worker.join(300)
    emit(thread_error=job.error, thread_done=job.done)
    job.apply()
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
    uv = {}
    for c in xcams:
        p = next(o for o in scene.objects if o.get("maskel_plane") == c.name)
        uv[c.get("maskel_xray_camera")] = plane_corners_uv(scene, p, c)
    emit(create_cameras=sorted(res_cams), generate_two=sorted(res_gen), xray_cameras=[c.name for c in xcams],
         xcam_plane_uv=uv, xcam_types=[c.data.type for c in xcams])

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
    coll.hide_render = True
    try:
        pipeline.XrayJob(scene, arm, [cam], client).prepare()
    except pipeline.XrayError as e:
        errors["empty_mask"] = str(e)
    coll.hide_render = False
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
