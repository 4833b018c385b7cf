"""``maskel serve``: the local HTTP server the Blender add-on talks to (DESIGN.md section 4).

GET /v1/health, POST /v1/xray, GET /v1/mannequin, POST /v1/skeleton; the schema (maskel.api) is
at /openapi.json (no /docs: nothing is fetched from the web at run time). Every error is JSON
``{"error": code, "message": text}`` from the one MaskelError handler (codes and statuses in
maskel.errors). Masks may be 8-bit grey, RGB (thresholded at 50%), RGBA/LA (alpha used) or 16-bit;
the conversion is reported in ``notes``.

What keeps it answering under hostile load: request bodies are bounded in size and JSON structure
as they stream in (maskel.serve_guard) and parsed and validated off the event loop; a mask's pixels
are read from its PNG header and reserved from a pixel budget before anything is decoded (503
past it); one model instance serves all requests through a bounded queue and a micro-batching
worker (maskel.serve_batcher), and a request whose client left is dropped before it runs;
connections that send no complete request header within ``header_timeout_s`` are closed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import socket
import time
from collections.abc import Callable
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from maskel import __version__
from maskel.api import (
    ERROR_RESPONSES,
    MAX_JSON_ITEMS,
    Health,
    SkeletonRequest,
    SkeletonResponse,
    XrayRequest,
    XrayResponse,
    describe,
    request_error,
)
from maskel.errors import BadBase64, BadJoints, InvalidRequest, MaskelError, Unavailable
from maskel.imageio import check_pixels, encode_gray, encode_u8, load_mask, png_dimensions
from maskel.infer import Prediction, Predictor, Prepared, pose_array
from maskel.serve_batcher import Batcher, Budget, Job
from maskel.serve_guard import Guard, is_loopback

log = logging.getLogger("maskel.serve")

DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_BODY = 64 * 1024 * 1024
DEFAULT_PIXEL_BUDGET = 3 * 4096 * 4096
"""Mask pixels in flight at once (~300 MB a 4096² mask): two 4096² masks plus room for small ones."""
CPU_MAX_BATCH = 2
Model = TypeVar("Model", bound=BaseModel)
MannequinProvider = Callable[[], dict[str, Any]]
SkeletonProvider = Callable[[dict[str, list[float]]], dict[str, Any]]


class ClientGone(MaskelError):
    """The client closed the connection; nothing is sent (logged as 499)."""

    code, status = "client_gone", 499


def mask_bytes(b64: str) -> bytes:
    if b64.startswith("data:") and "," in b64:
        b64 = b64.split(",", 1)[1]
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise BadBase64("'mask' is not valid base64") from None


def mask_header(b64: str, max_pixels: int) -> int:
    """The mask's pixel count from its first 32 base64 characters (the PNG signature + IHDR), so a
    request is sized before its mask is decoded; raises BadImage/TooLarge."""
    head = mask_bytes(b64.split(",", 1)[1][:32] if b64.startswith("data:") and "," in b64 else b64[:32])
    w, h = png_dimensions(head, "the mask")
    check_pixels(w, h, max_pixels, "the mask")
    return w * h


def decode_mask(b64: str, max_pixels: int) -> tuple[Any, str | None]:
    loaded = load_mask(mask_bytes(b64), max_pixels=max_pixels, name="the mask")
    return loaded.mask, loaded.note


def parse(model: type[Model], body: bytes) -> Model:
    """Validate a JSON body against a schema model (run in a worker thread, never on the loop)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        error = request_error(e)
        if isinstance(error, InvalidRequest) and all(err.get("loc", ())[:1] == ("joints",) for err in e.errors()):
            error = BadJoints(str(error))  # a schema problem inside the pose is a bad pose
        raise error from None


async def read_body(request: Request) -> bytes:
    try:
        return await request.body()
    except ClientDisconnect:
        raise ClientGone("the client left before sending its body") from None


async def until_disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def body_schema(name: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{name}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def create_app(predictor: Predictor, max_batch: int = 8, queue_size: int = 64, max_pixels: int = DEFAULT_MAX_PIXELS,
               batch_window_s: float = 0.005, pixel_budget: int = DEFAULT_PIXEL_BUDGET,
               mannequin: MannequinProvider | None = None, skeleton: SkeletonProvider | None = None) -> FastAPI:  # fmt: skip
    """The FastAPI app around one predictor (the batcher's worker starts with the app). The mannequin
    and skeleton providers come from the composition root (render's, through maskel.plugins)."""
    state: dict[str, Batcher] = {}
    budget = Budget(pixel_budget)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["batcher"] = Batcher(predictor, max_batch=max_batch, queue_size=queue_size, window_s=batch_window_s)
        yield
        await run_in_threadpool(state["batcher"].close)

    app = FastAPI(title="MaSkel", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Silhouette mask -> whole-body X-ray (arXiv 2404.09000), served locally.")  # fmt: skip

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _, defs = models_json_schema([(XrayRequest, "validation"), (SkeletonRequest, "validation")],
                                         ref_template="#/components/schemas/{model}")  # fmt: skip
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(MaskelError)
    async def maskel_error(request: Request, exc: MaskelError) -> Response:
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
        return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"error": InvalidRequest.code, "message": describe(list(exc.errors()))}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "message": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s", request.method, exc_info=exc)
        return JSONResponse({"error": "internal", "message": "internal server error (see the server log)"}, status_code=500)

    @app.get("/v1/health", response_model=Health)
    async def health() -> dict[str, Any]:
        return predictor.info()

    @app.post("/v1/xray", response_model=XrayResponse, responses=ERROR_RESPONSES, openapi_extra=body_schema("XrayRequest"))
    async def xray(request: Request) -> dict[str, Any]:
        t0 = time.perf_counter()
        req = await run_in_threadpool(parse, XrayRequest, await read_body(request))
        predictor.style_index(req.style)
        predictor.use_sr(req.sr)
        pixels = mask_header(req.mask, max_pixels)
        budget.reserve(pixels)
        try:
            return await _xray(request, req, t0)
        finally:
            budget.release(pixels)

    def prepare(req: XrayRequest) -> tuple[Prepared, str | None]:
        mask, note = decode_mask(req.mask, max_pixels)
        joints = req.joints.model_dump() if req.joints is not None else None
        if joints is not None:  # checked even when the model has no pose channel
            pose_array(joints, mask.shape)
        return predictor.prepare(mask, joints, req.style, req.sr, req.mirror_average), note

    async def _xray(request: Request, req: XrayRequest, t0: float) -> dict[str, Any]:
        prepared, note = await run_in_threadpool(prepare, req)
        t1 = time.perf_counter()
        job = Job(prepared=prepared, seed=req.seed, labels=req.labels)
        future = state["batcher"].submit(job)
        result, gone = asyncio.wrap_future(future), asyncio.ensure_future(until_disconnected(request))
        try:
            await asyncio.wait({result, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not result.done():
            future.cancel()  # dropped unrun unless its batch has started
            raise ClientGone("the client left while its X-ray was queued")
        drawn = result.result()
        del job
        t2 = time.perf_counter()

        def finish() -> tuple[Prediction, str, str | None]:
            pred = predictor.finish(prepared, drawn)
            x = base64.b64encode(encode_gray(pred.xray, req.bits)).decode()
            lab = base64.b64encode(encode_u8(pred.labels)).decode() if pred.labels is not None else None
            return pred, x, lab

        pred, x64, lab64 = await run_in_threadpool(finish)
        t3 = time.perf_counter()
        timings = {
            **pred.timings,
            "decode_ms": round((t1 - t0) * 1000, 2),
            "encode_ms": round((t3 - t2) * 1000 - pred.timings["unframe_ms"], 2),
            "total_ms": round((t3 - t0) * 1000, 2),
        }
        return {
            "xray": x64, "labels": lab64, "timings": timings, "width": int(pred.xray.shape[1]),
            "height": int(pred.xray.shape[0]), "style": req.style or predictor.styles[0], "notes": [note] if note else [],
            "super_resolution": predictor.sr.describe() if prepared.sr else None, "mirror_average": prepared.mirror,
        }  # fmt: skip

    @app.get("/v1/mannequin", responses=ERROR_RESPONSES)
    async def get_mannequin() -> JSONResponse:
        """The rest-pose mannequin JSON (format maskel-mannequin/1) the add-on builds its rig from."""
        if mannequin is None:
            raise Unavailable("the mannequin needs the render extras (pip install 'maskel[render]')")
        return JSONResponse(await run_in_threadpool(mannequin))

    @app.post("/v1/skeleton", response_model=SkeletonResponse, responses=ERROR_RESPONSES,
              openapi_extra=body_schema("SkeletonRequest"))  # fmt: skip
    async def post_skeleton(request: Request) -> dict[str, Any]:
        """The phantom's bones fitted to a rig's rest-pose joints, one mesh per bone (the add-on's Add skeleton)."""
        req = await run_in_threadpool(parse, SkeletonRequest, await read_body(request))
        if skeleton is None:
            raise Unavailable("the skeleton needs the render extras (pip install 'maskel[render]')")
        return await run_in_threadpool(skeleton, req.joints)

    return app


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


def _uvicorn_parts(header_timeout_s: float) -> tuple[type, type]:
    """uvicorn's h11 protocol with a request-header timeout (uvicorn has none: a connection that
    sends nothing, or half a header, stays open forever), and a Server that exits 0 on SIGTERM."""
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(header_timeout_s, self._header_timeout)

        def _header_timeout(self) -> None:
            self._header_timer = None
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._header_timer is not None and self.cycle is not None and not self.cycle.response_complete:
                self._header_timer.cancel()
                self._header_timer = None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._header_timer is None and not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self):  # uvicorn re-raises the signal after a graceful stop (exit 143)
            import signal
            import threading

            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return TimedH11Protocol, Server


def run(
    host: str = "127.0.0.1",
    port: int = 8765,
    checkpoint: str | None = None,
    device: str = "auto",
    token: str | None = None,
    max_batch: int | None = None,
    queue_size: int = 64,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    batch_window_s: float = 0.005,
    pixel_budget: int = DEFAULT_PIXEL_BUDGET,
    header_timeout_s: float = 10.0,
    mannequin: MannequinProvider | None = None,
    skeleton: SkeletonProvider | None = None,
    sr: str | None = None,
    sr_scale: int | None = None,
    mirror_average: bool = False,
) -> int:
    """Load the model, serve until SIGINT/SIGTERM (in-flight requests finish), return 0."""
    import uvicorn

    if not is_loopback(host) and not token:
        raise MaskelError(f"refusing to listen on non-loopback address {host} without --token (or $MASKEL_TOKEN)")
    if min(max_batch or 1, queue_size, max_pixels, max_body_bytes, pixel_budget) < 1 or header_timeout_s <= 0:
        raise MaskelError("--max-batch, --queue, --max-pixels, --max-body-bytes, --pixel-budget and --header-timeout must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = bind_socket(host, port)
    predictor = Predictor(checkpoint, device=device, max_batch=max_batch or 8, sr=sr, sr_scale=sr_scale, mirror_average=mirror_average)
    if max_batch is None:  # CPU: 138/103/138/198 ms an image at batch 1/2/4/8 (256², 1 thread): caches, not cores
        max_batch = predictor.max_batch = 8 if predictor.device.type != "cpu" else CPU_MAX_BATCH
    app = create_app(predictor, max_batch, queue_size, max_pixels, batch_window_s, pixel_budget, mannequin, skeleton)
    guarded = Guard(app, token=token, max_body_bytes=max_body_bytes, host=host, max_json_items=MAX_JSON_ITEMS,
                    body_timeout_s=header_timeout_s * 3)  # fmt: skip
    info = predictor.info()
    log.info("model %s (%dpx, styles %s) on %s; listening on http://%s:%d%s", info["model"], info["resolution"],
             ",".join(info["styles"]), info["device"], host, port, " (token required)" if token else "")  # fmt: skip
    protocol, server = _uvicorn_parts(header_timeout_s)
    config = uvicorn.Config(guarded, http=protocol, log_config=None, access_log=False, timeout_graceful_shutdown=60,
                            lifespan="on", timeout_keep_alive=5)  # fmt: skip
    server(config).run(sockets=[sock])
    return 0
