"""The MaSkel tab in the 3D Viewport sidebar."""

from __future__ import annotations

import bpy

from . import character as charmod
from . import state
from .pipeline import xray_cameras


class VIEW3D_PT_maskel(bpy.types.Panel):
    bl_label = "MaSkel X-ray"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MaSkel"

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        s = scene.maskel

        box = layout.box()
        box.label(text="Character", icon="ARMATURE_DATA")
        box.prop(s, "character", text="")
        box.prop(s, "exclude_clothes")
        if s.character is not None:
            for ob in charmod.candidate_meshes(s.character, scene):
                row = box.row()
                op = row.operator("maskel.toggle_body_mesh", text=ob.name, emboss=False,
                                  icon="CHECKBOX_HLT" if charmod.is_body(ob, s.exclude_clothes)
                                  else "CHECKBOX_DEHLT")  # fmt: skip
                op.name = ob.name
        col = box.column(align=True)
        col.operator("maskel.add_mannequin", icon="OUTLINER_OB_ARMATURE")
        col.operator("maskel.add_skeleton", icon="BONE_DATA")

        box = layout.box()
        box.label(text="Camera", icon="CAMERA_DATA")
        xcams = xray_cameras(scene)
        if xcams:
            box.prop(s, "use_xray_cameras")
        if not (xcams and s.use_xray_cameras):
            box.prop(s, "camera", text="")
            if s.camera is None:
                box.label(text=f"scene camera: {scene.camera.name if scene.camera else 'none'}")
        box.operator("maskel.create_cameras", icon="VIEW_CAMERA")

        box = layout.box()
        box.prop(s, "resolution")
        box.prop(s, "style")
        box.prop(s, "quality")
        box.prop(s, "seed")
        box.prop(s, "opacity", slider=True)
        row = box.row(align=True)
        row.prop(s, "in_front", toggle=True)
        row.prop(s, "live", toggle=True, icon="REC" if s.live else "PLAY")

        box = layout.box()
        row = box.row()
        row.label(text=f"Server: {state.server_status}")
        row.operator("maskel.check_server", text="", icon="FILE_REFRESH")

        if state.job is not None:
            if hasattr(layout, "progress"):  # 4.0+
                layout.progress(factor=state.progress, type="BAR", text=state.message)
            else:
                layout.label(text=f"{state.message} ({state.progress * 100:.0f}%)")
            layout.operator("maskel.cancel", icon="CANCEL")
        else:
            layout.operator("maskel.generate", icon="RENDER_STILL")
            if state.message:
                layout.label(text=state.message)


CLASSES = (VIEW3D_PT_maskel,)


def register() -> None:
    for c in CLASSES:
        bpy.utils.register_class(c)


def unregister() -> None:
    for c in reversed(CLASSES):
        bpy.utils.unregister_class(c)
