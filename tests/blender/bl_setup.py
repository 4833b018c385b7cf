"""Set-up shared by the scripts that run inside Blender (tests/blender/*_scenario.py and
benchmarks/addon_latency.py): install the built add-on zip the way a user does on this Blender
version, and add the mannequin through the add-on's own operator."""

import json

import bpy


def install_addon(zip_path: str) -> str:
    """Install and enable the add-on from its zip (an extension into the "user_default"
    repository on 4.2+, which works headless with no network; a legacy add-on before) and return
    its package's module name."""
    if bpy.app.version >= (4, 2, 0):
        bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
        return "bl_ext.user_default.maskel_xray"
    bpy.ops.preferences.addon_install(filepath=zip_path, overwrite=True)
    bpy.ops.preferences.addon_enable(module="maskel_xray")
    return "maskel_xray"


def clear_scene(scene) -> None:
    for ob in list(scene.objects):
        bpy.data.objects.remove(ob)


def add_mannequin(scene, source: str):
    """Add Mannequin from the server (``source == "server"``) or a file; -> (operator result,
    the armature, its joint map: canonical joint -> "bone:head|tail")."""
    if source == "server":
        result = bpy.ops.maskel.add_mannequin(source="SERVER")
    else:
        result = bpy.ops.maskel.add_mannequin(source="FILE", filepath=source)
    arm = scene.maskel.character
    return result, arm, json.loads(arm["maskel_joint_map"]) if arm is not None else {}


def joint_bone(arm, joint_map: dict, joint: str):
    """The pose bone whose head or tail is ``joint``."""
    return arm.pose.bones[joint_map[joint].rpartition(":")[0]]
