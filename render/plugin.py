"""What render/ plugs into maskel's composition roots (``maskel serve``, ``maskel demo``,
``maskel mannequin``): the mannequin and skeleton providers of the server, and two commands.

maskel never imports render (tests/test_layering.py); its CLI finds this module by name through
maskel.plugins. Nothing heavy is imported here: anny, trimesh and the bone meshes load on first use.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

from maskel.errors import BadJoints, MaskelError, Unavailable

_lock = threading.Lock()
_mannequin: dict[str, Any] | None = None


def mannequin() -> dict[str, Any]:
    """The rest-pose mannequin JSON (maskel-mannequin/1), built once."""
    global _mannequin
    with _lock:
        if _mannequin is None:
            try:
                from render.mannequin import mannequin_dict

                _mannequin = mannequin_dict()
            except ImportError as e:
                raise Unavailable(f"the mannequin needs the render extras (pip install 'maskel[render]'): {e}") from None
            except MaskelError as e:
                raise Unavailable(f"the mannequin could not be built: {e}") from None
        return _mannequin


def skeleton(joints: dict[str, list[float]]) -> dict[str, Any]:
    """The phantom's bones fitted to a rig's rest-pose joints (maskel-skeleton/1), one mesh a bone."""
    t0 = time.perf_counter()
    with _lock:
        try:
            from render.skeleton3d import SEGMENTS, skeleton_for_joints

            bones, skipped = skeleton_for_joints(joints)
        except ImportError as e:
            raise Unavailable(f"the skeleton needs the render extras (pip install 'maskel[render]'): {e}") from None
        except BadJoints:
            raise
        except MaskelError as e:
            raise BadJoints(str(e)) from None
    out = []
    for b in bones:
        start, end, _ = SEGMENTS[b.segment]
        out.append({
            "name": b.name, "label": int(b.label), "segment": b.segment, "start": start, "end": end,
            "vertices": base64.b64encode(b.vertices.astype("<f4").tobytes()).decode(),
            "faces": base64.b64encode(b.faces.astype("<u4").tobytes()).decode(),
        })  # fmt: skip
    return {"format": "maskel-skeleton/1", "bones": out, "skipped": skipped,
            "timings": {"total_ms": round((time.perf_counter() - t0) * 1000, 2)}}  # fmt: skip


def _demo(argv: list[str]) -> int:
    from render.demo import main

    return main(argv)


def _mannequin_command(argv: list[str]) -> int:
    from render.mannequin import main

    return int(main(argv) or 0)


COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "demo": ("pose a random phantom, draw its X-ray, compare with the phantom's own", _demo),
    "mannequin": ("export the rest-pose mannequin JSON (--out FILE)", _mannequin_command),
}
