"""``maskel serve``: the local HTTP server the Blender add-on talks to (DESIGN.md section 4).

GET /v1/health, POST /v1/xray, GET /v1/mannequin, POST /v1/skeleton; the OpenAPI schema is at
/openapi.json.
Every error is JSON ``{"error": code, "message": text}``: 400 undecodable input (bad base64,
not a PNG, truncated PNG, malformed JSON), 401 token, 413 body or pixel limit (the pixel count
is read from the PNG header before any pixel is decoded), 422 well-formed but unusable input
(missing fields, empty or full mask, unknown style, bad joints), 503 queue full or mannequin
unavailable. Masks may be 8-bit grey, RGB (thresholded at 50%), RGBA/LA (alpha used) or 16-bit;
the conversion is reported in ``notes``. One model instance serves all requests through a
bounded queue and a micro-batching worker (maskel.serve_batcher).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import socket
import struct
import threading
import time
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from maskel import MaskelError, __version__
from maskel.imageio import encode_gray, encode_u8, load_mask
from maskel.infer import Predictor, pose_array
from maskel.serve_batcher import Batcher, Job, QueueFull
from maskel.serve_guard import Guard

log = logging.getLogger("maskel.serve")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_BODY = 64 * 1024 * 1024


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. bad_image, too_large, unknown_style")
    message: str = Field(description="one line for people")


class XrayRequest(BaseModel):
    mask: str = Field(description="the silhouette as a base64 PNG (255 body / 0 background; RGBA uses alpha)")
    joints: dict[str, Any] | None = Field(None, description="optional pose JSON (maskel.data.joints) in the mask's pixels")
    style: str | None = Field(None, description="one of /v1/health 'styles' (radiograph, dxa); default: the first")
    seed: int = Field(0, ge=0, le=2**63 - 1)
    labels: bool = Field(False, description="also return the bone label map (if the model has a label head)")
    bits: Literal[8, 16] = Field(16, description="bit depth of the returned X-ray PNG")


class XrayResponse(BaseModel):
    xray: str = Field(description="base64 grayscale PNG, same size as the mask")
    labels: str | None = Field(description="base64 8-bit PNG of bone ids, or null")
    timings: dict[str, float] = Field(description="milliseconds per step, and batch_size")
    width: int
    height: int
    style: str
    notes: list[str] = Field(default_factory=list, description="conversions applied to the input mask")


class SkeletonRequest(BaseModel):
    joints: dict[str, list[float]] = Field(
        description="canonical joint (maskel.data.joints) -> world [x, y, z] in metres, Z up, of the rig at rest"
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


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 413, 422, 503)
}


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, without decoding anything."""
    if data[:8] != PNG_SIGNATURE:
        raise ApiError(400, "bad_image", "the mask is not a PNG")
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ApiError(400, "bad_image", "the mask PNG has no valid header")
    return struct.unpack(">II", data[16:24])


def decode_mask(b64: str, max_pixels: int) -> tuple[Any, str | None]:
    if b64.startswith("data:") and "," in b64:
        b64 = b64.split(",", 1)[1]
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "bad_base64", "'mask' is not valid base64") from None
    w, h = png_size(data)
    if w * h > max_pixels:
        raise ApiError(413, "too_large", f"the mask is {w}x{h} pixels; the limit is {max_pixels} pixels")
    try:
        loaded = load_mask(data, max_pixels=max_pixels)
    except MaskelError as e:
        msg = str(e)
        # load_mask names byte input "image": its "image: ..." errors are undecodable files
        if msg.startswith("image:"):
            raise ApiError(400, "bad_image", "the mask " + msg.removeprefix("image: ")) from None
        raise ApiError(422, "bad_mask", msg) from None
    return loaded.mask, loaded.note


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "bad_json", "the request body is not valid JSON"
    parts = []
    for e in errors[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return 422, "invalid_request", "; ".join(parts) + more


class Mannequin:
    """render.mannequin's rest-pose rig, built once on first request (it needs the render extras)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        with self._lock:
            if self._value is None:
                try:
                    from render.mannequin import mannequin_dict
                except ImportError as e:
                    raise ApiError(
                        503, "unavailable", f"the mannequin needs the render extras (pip install 'maskel[render]'): {e}"
                    ) from None
                try:
                    self._value = mannequin_dict()
                except MaskelError as e:
                    raise ApiError(503, "unavailable", f"the mannequin could not be built: {e}") from None
                except ImportError as e:
                    raise ApiError(503, "unavailable", f"the mannequin needs the render extras: {e}") from None
            return self._value


class Skeleton:
    """render.skeleton3d's phantom bones (built once on first request; they need the render extras)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def fit(self, joints: dict[str, list[float]]) -> dict[str, Any]:
        t0 = time.perf_counter()
        with self._lock:
            try:
                from render.skeleton3d import SEGMENTS, skeleton_for_joints
            except ImportError as e:
                raise ApiError(503, "unavailable", f"the skeleton needs the render extras (pip install 'maskel[render]'): {e}") from None
            try:
                bones, skipped = skeleton_for_joints(joints)
            except ImportError as e:
                raise ApiError(503, "unavailable", f"the skeleton needs the render extras: {e}") from None
            except MaskelError as e:
                raise ApiError(422, "bad_joints", str(e)) from None
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


def create_app(predictor: Predictor, max_batch: int = 8, queue_size: int = 64, max_pixels: int = DEFAULT_MAX_PIXELS,
               batch_window_s: float = 0.005) -> FastAPI:  # fmt: skip
    """The FastAPI app around one predictor (the batcher's worker starts with the app)."""
    state: dict[str, Batcher] = {}
    mannequin = Mannequin()
    skeleton = Skeleton()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["batcher"] = Batcher(predictor, max_batch=max_batch, queue_size=queue_size, window_s=batch_window_s)
        yield
        await run_in_threadpool(state["batcher"].close)

    app = FastAPI(title="MaSkel", version=__version__, lifespan=lifespan,
                  description="Silhouette mask -> whole-body X-ray (arXiv 2404.09000), served locally.")  # fmt: skip

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, code, message = _validation_message(exc)
        return JSONResponse({"error": code, "message": message}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "message": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal", "message": "internal server error (see the server log)"}, status_code=500)

    @app.get("/v1/health", response_model=Health)
    async def health() -> dict[str, Any]:
        return predictor.info()

    @app.post("/v1/xray", response_model=XrayResponse, responses=ERRORS)
    async def xray(req: XrayRequest) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            predictor.style_index(req.style)
        except MaskelError as e:
            raise ApiError(422, "unknown_style", str(e)) from None
        mask, note = await run_in_threadpool(decode_mask, req.mask, max_pixels)
        if req.joints is not None:  # checked even when the model has no pose channel
            try:
                pose_array(req.joints, mask.shape)
            except MaskelError as e:
                raise ApiError(422, "bad_joints", str(e)) from None
        t1 = time.perf_counter()
        job = Job(mask=mask, joints=req.joints, style=req.style, seed=req.seed, labels=req.labels)
        try:
            future = state["batcher"].submit(job)
        except QueueFull:
            raise ApiError(503, "busy", "the request queue is full; retry shortly") from None
        try:
            pred = await asyncio.wrap_future(future)
        except MaskelError as e:
            raise ApiError(422, "bad_input", str(e)) from None
        t2 = time.perf_counter()

        def encode() -> tuple[str, str | None]:
            x = base64.b64encode(encode_gray(pred.xray, req.bits)).decode()
            lab = base64.b64encode(encode_u8(pred.labels)).decode() if pred.labels is not None else None
            return x, lab

        x64, lab64 = await run_in_threadpool(encode)
        t3 = time.perf_counter()
        timings = {
            **pred.timings,
            "decode_ms": round((t1 - t0) * 1000, 2),
            "encode_ms": round((t3 - t2) * 1000, 2),
            "total_ms": round((t3 - t0) * 1000, 2),
        }
        return {
            "xray": x64, "labels": lab64, "timings": timings, "width": int(mask.shape[1]),
            "height": int(mask.shape[0]), "style": req.style or predictor.styles[0], "notes": [note] if note else [],
        }  # fmt: skip

    @app.get("/v1/mannequin", responses=ERRORS)
    async def get_mannequin() -> JSONResponse:
        """The rest-pose mannequin JSON (format maskel-mannequin/1) the add-on builds its rig from."""
        return JSONResponse(await run_in_threadpool(mannequin.get))

    @app.post("/v1/skeleton", response_model=SkeletonResponse, responses=ERRORS)
    async def post_skeleton(req: SkeletonRequest) -> dict[str, Any]:
        """The phantom's bones fitted to a rig's rest-pose joints, one mesh per bone (the add-on's Add skeleton)."""
        return await run_in_threadpool(skeleton.fit, req.joints)

    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """Listen before the (slow) model load is wasted; a bad address is a one-line error."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        raise MaskelError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    sock.set_inheritable(True)
    return sock


def run(
    host: str = "127.0.0.1",
    port: int = 8765,
    checkpoint: str | None = None,
    device: str = "auto",
    token: str | None = None,
    max_batch: int = 8,
    queue_size: int = 64,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    batch_window_s: float = 0.005,
) -> int:
    """Load the model, serve until SIGINT/SIGTERM (in-flight requests finish), return 0."""
    import uvicorn

    if not is_loopback(host) and not token:
        raise MaskelError(f"refusing to listen on non-loopback address {host} without --token (or $MASKEL_TOKEN)")
    if min(max_batch, queue_size, max_pixels, max_body_bytes) < 1:
        raise MaskelError("--max-batch, --queue, --max-pixels and --max-body-bytes must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = bind_socket(host, port)
    predictor = Predictor(checkpoint, device=device, max_batch=max_batch)
    app = Guard(create_app(predictor, max_batch, queue_size, max_pixels, batch_window_s),
                token=token, max_body_bytes=max_body_bytes)  # fmt: skip
    info = predictor.info()
    log.info("model %s (%dpx, styles %s) on %s; listening on http://%s:%d%s", info["model"], info["resolution"],
             ",".join(info["styles"]), info["device"], host, port, " (token required)" if token else "")  # fmt: skip
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=60, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
    return 0
