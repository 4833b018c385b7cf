"""The server's HTTP contract (DESIGN.md section 4): request, response, pose, health and error
models, and the error codes, in one place for the server, its OpenAPI schema and the tests that
hold the Blender add-on's client to it. (The add-on itself cannot import pydantic: its request
keys are checked against the served /openapi.json by tests/test_serve_contract.py.)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maskel.data.joints import CANONICAL_JOINTS, MAX_COORD, MAX_IMAGE_SIDE, MAX_JOINTS
from maskel.errors import ALL_ERRORS, BadJson, InvalidRequest, MaskelError

MAX_STYLE_CHARS = 64
MAX_JSON_ITEMS = 4096
"""Most JSON containers and separators (``{``, ``[``, ``,``) a request body may hold; counted as the
body streams in (maskel.serve_guard), so no body costs more to parse than one long string. A valid
/v1/xray request with 64 joints has ~400; the base64 mask has none."""

ERROR_CODES: dict[str, int] = {cls.code: cls.status for cls in ALL_ERRORS} | {
    "not_found": 404, "method_not_allowed": 405, "internal": 500,
}  # fmt: skip
"""Every ``error`` code the server answers with, and its HTTP status."""

Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_COORD, le=MAX_COORD)]
Side = Annotated[int, Field(strict=True, ge=1, le=MAX_IMAGE_SIDE)]


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code: " + ", ".join(sorted(ERROR_CODES)))
    message: str = Field(description="one line for people")


class Joint(BaseModel):
    """One 2D joint in the mask's pixels (x right, y down, origin at the top-left pixel's corner)."""

    name: Literal[CANONICAL_JOINTS] = Field(description="a canonical joint (maskel.data.joints); left/right are the character's")  # type: ignore[valid-type]
    x: Coordinate
    y: Coordinate
    depth: Coordinate = Field(0.0, description="distance along the camera's view axis, metres (larger = farther)")
    visible: bool = Field(True, strict=True)


class Pose(BaseModel):
    """A 2D pose: the joints of one mask, for the image size it was taken at."""

    width: Side | None = Field(None, description="image width the joints refer to (must match the mask)")
    height: Side | None = Field(None, description="image height the joints refer to (must match the mask)")
    joints: list[Joint] = Field(max_length=MAX_JOINTS)


class XrayRequest(BaseModel):
    mask: str = Field(description="the silhouette as a base64 PNG (255 body / 0 background; RGBA uses alpha)")
    joints: Pose | None = Field(None, description="optional 2D pose of the rig, in the mask's pixels")
    style: str | None = Field(None, max_length=MAX_STYLE_CHARS, description="one of /v1/health 'styles'; default: the first")
    seed: int = Field(0, ge=0, le=2**63 - 1)
    labels: bool = Field(False, strict=True, description="also return the bone label map (if the model has a label head)")
    bits: Literal[8, 16] = Field(16, description="bit depth of the returned X-ray PNG")
    sr: bool = Field(False, strict=True, description="lift the X-ray with the server's diffusion super-resolution "
                     "(/v1/health 'super_resolution'; slower); error no_super_resolution on a server without it")  # fmt: skip
    mirror_average: bool | None = Field(None, strict=True, description="average the drawings of the character and of its "
                                        "mirror image (a little more accurate, about 2.4 times the model time); null: the server's "
                                        "setting (/v1/health 'mirror_average')")  # fmt: skip


class XrayResponse(BaseModel):
    xray: str = Field(description="base64 grayscale PNG, same size as the mask")
    labels: str | None = Field(description="base64 8-bit PNG of bone ids, or null")
    timings: dict[str, float] = Field(description="milliseconds per step, and batch_size")
    width: int
    height: int
    style: str
    super_resolution: str | None = Field(None, description="the super-resolution applied, or null")
    mirror_average: bool = Field(False, description="whether the X-ray is the mean with the mirror image's drawing")
    notes: list[str] = Field(default_factory=list, description="conversions applied to the input mask")


class SkeletonRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"maxProperties": len(CANONICAL_JOINTS)})
    joints: dict[str, Annotated[list[Coordinate], Field(min_length=3, max_length=3)]] = Field(
        description="canonical joint (maskel.data.joints) -> world [x, y, z] in metres, Z up, of the rig at rest",
        max_length=len(CANONICAL_JOINTS),
    )


class SkeletonBone(BaseModel):
    name: str = Field(description="the phantom's bone name, e.g. humerus_left (render.labels)")
    label: int
    segment: str = Field(description="body segment, e.g. left_upper_arm")
    start: str = Field(description="the segment's start joint")
    end: str = Field(description="the segment's end joint")
    vertices: str = Field(description="base64 little-endian float32 [x, y, z, ...], world metres")
    faces: str = Field(description="base64 little-endian uint32 [a, b, c, ...] triangles")


class SkeletonResponse(BaseModel):
    format: str = Field(description="maskel-skeleton/1")
    bones: list[SkeletonBone]
    skipped: list[str] = Field(description="segments left out because a joint was missing")
    timings: dict[str, float]


class Health(BaseModel):
    model: str
    resolution: int
    device: str
    version: str
    styles: list[str]
    pose_channel: bool
    labels: bool
    mirror_average: bool = Field(False, description="whether requests that do not say are averaged with the drawing "
                                 "of the mirror image (maskel serve --mirror-average)")  # fmt: skip
    super_resolution: str | None = Field(None, description="the SR checkpoint requests can ask for (sr), or null")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in sorted(set(ERROR_CODES.values()))
}


def request_error(exc: ValidationError) -> MaskelError:
    """A pydantic ValidationError of a request body -> BadJson (400) or InvalidRequest (422), one line."""
    errors = exc.errors(include_url=False, include_input=False)
    if any(e.get("type") == "json_invalid" for e in errors):
        return BadJson("the request body is not valid JSON")
    return InvalidRequest(describe(errors))


def describe(errors: list[Any]) -> str:
    """The first three problems as ``loc: msg`` (no input values: they may be megabytes)."""
    parts = []
    for e in errors[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more
