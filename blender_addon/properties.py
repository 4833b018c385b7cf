"""Scene settings of the MaSkel panel (``scene.maskel``)."""

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
)

from . import overlay
from .core.client import DEFAULT_STYLE
from .core.contract import STYLES


def _poll_character(_self, ob) -> bool:
    return ob.type in ("ARMATURE", "MESH") and ob.get(overlay.OVERLAY_TAG) is None


def _poll_camera(_self, ob) -> bool:
    return ob.type == "CAMERA"


def _live_changed(self, context) -> None:
    from . import live

    (live.start if self.live else live.stop)()


def _display_changed(self, context) -> None:
    overlay.set_display(context.scene, self.opacity, self.in_front)


class MaskelSceneSettings(bpy.types.PropertyGroup):
    character: PointerProperty(name="Character", type=bpy.types.Object, poll=_poll_character,
                               description="Armature (its body meshes are found automatically) or a body mesh")  # fmt: skip
    exclude_clothes: BoolProperty(
        name="Exclude clothes", default=True,
        description="Leave out meshes tagged maskel_clothing or named like clothing/hair "
                    "(custom property maskel_body=True/False on a mesh overrides)",
    )  # fmt: skip
    camera: PointerProperty(name="Camera", type=bpy.types.Object, poll=_poll_camera,
                            description="Camera to render from (empty: the scene camera)")  # fmt: skip
    use_xray_cameras: BoolProperty(name="Front + side", default=True,
                                   description="Use the MaSkel front and side X-ray cameras when both exist")  # fmt: skip
    resolution: EnumProperty(name="Resolution", default="512", description="Long side of the silhouette, in pixels",
                             items=[("256", "256", ""), ("512", "512", ""), ("1024", "1024", "")])  # fmt: skip
    style: EnumProperty(name="Style", default=DEFAULT_STYLE,
                        items=[(name, s["label"], s["is"]) for name, s in STYLES.items()])  # fmt: skip
    quality: EnumProperty(name="Quality", default="standard", items=[
        ("standard", "Standard", "The model's own resolution: the fastest"),
        ("super_resolution", "Super-resolution", "The X-ray lifted x2 or x4 by diffusion super-resolution: sharper, "
         "several times slower; needs a server started with --sr (the local server: an SR checkpoint in the preferences)"),
    ])  # fmt: skip
    seed: IntProperty(name="Seed", default=0, min=0)
    opacity: FloatProperty(name="Opacity", default=0.8, min=0.0, max=1.0, subtype="FACTOR", update=_display_changed,
                           description="Opacity of the X-ray image and of the camera background image")  # fmt: skip
    in_front: BoolProperty(name="In front", default=True, update=_display_changed,
                           description="Draw the X-ray in front of the character (off: behind it)")  # fmt: skip
    live: BoolProperty(name="Live X-ray", default=False, update=_live_changed,
                       description="Request a new X-ray whenever the pose, frame or camera changes")  # fmt: skip


CLASSES = (MaskelSceneSettings,)


def register() -> None:
    for c in CLASSES:
        bpy.utils.register_class(c)
    bpy.types.Scene.maskel = PointerProperty(type=MaskelSceneSettings)


def unregister() -> None:
    del bpy.types.Scene.maskel
    for c in reversed(CLASSES):
        bpy.utils.unregister_class(c)
