"""HTTP client for the local MaSkel server (urllib only), with errors turned into one-line messages."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from .pngsize import png_size

START_HINT = (
    "start one with `maskel serve --checkpoint MODEL.safetensors --port {port}` "
    "or use Preferences > Add-ons > MaSkel X-ray > Start local server"
)


# The add-on's own codes (the server's are maskel.errors' and arrive in ServerError.code as sent).
BAD_URL, UNREACHABLE, TIMEOUT, BAD_REPLY, NOT_MASKEL = "bad_url", "unreachable", "timeout", "bad_reply", "not_maskel"
CONFIG, DIED = "config", "died"
SERVER_GONE = frozenset({UNREACHABLE, TIMEOUT})
"""Codes after which a batch stops instead of waiting on every remaining frame."""
BUSY_RETRIES = 3
DEFAULT_STYLE = "dxa"
"""The add-on's default style: DXA draws bone alone (bright on black), which is what a user looks
for under a pose and what the MaSkel paper's X-rays are; the radiograph's bones sit on a soft-tissue
grey and read more faintly. (The server's own default is its first style.)"""
MAX_RETRY_AFTER_S = 10.0


def _retry_after(e: urllib.error.HTTPError) -> float | None:
    """Seconds to wait before retrying a 503 that names them in Retry-After (delta-seconds form)."""
    if e.code != 503:
        return None
    try:
        pause = float(e.headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        return None
    return min(max(pause, 0.0), MAX_RETRY_AFTER_S)


class AddonError(Exception):
    """The add-on's one error base: a message fit to show the user as-is, and a named code."""

    default_code = "error"

    def __init__(self, message: str, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code or self.default_code
        self.status = status


class ServerError(AddonError):
    """A failure talking to the server (code: one of the above, or the server's error code)."""


@dataclass
class XrayResult:
    xray_png: bytes
    width: int
    height: int
    style: str
    labels_png: bytes | None = None
    timings: dict = field(default_factory=dict)
    super_resolution: str | None = None  # what the server's super-resolution did, when asked for


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


class MaskelClient:
    """Talks to ``maskel serve``. ``timeout`` is per request in seconds; ``token`` is sent as Bearer."""

    def __init__(self, url: str, timeout: float = 60.0, token: str | None = None):
        url = (url or "").strip().rstrip("/")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerError(f"bad server URL {url!r} (expected e.g. http://127.0.0.1:8765)", BAD_URL)
        self.url = url
        self.timeout = float(timeout)
        self.token = token or None

    def _port(self) -> int:
        parts = urllib.parse.urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    def _request(self, method: str, path: str, body: dict | None = None, timeout: float | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        wait = self.timeout if timeout is None else timeout
        try:
            raw = self._send(req, wait)
        except urllib.error.HTTPError as e:
            raise self._http_error(e) from None
        except OSError as e:  # URLError, ConnectionError and TimeoutError (= socket.timeout) alike
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError):
                raise ServerError(
                    f"the MaSkel server at {self.url} did not answer within {wait:g} s "
                    "(raise the timeout in the add-on preferences, or use a lower resolution)",
                    TIMEOUT,
                ) from None
            raise ServerError(
                f"no MaSkel server at {self.url} ({_reason_text(reason)}); " + START_HINT.format(port=self._port()),
                UNREACHABLE,
            ) from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ServerError(f"{self.url}{path} did not return JSON (is this a MaSkel server?)", BAD_REPLY) from None

    def _send(self, req: urllib.request.Request, wait: float) -> bytes:
        """The response body; a 503 with Retry-After (the server at its queue or memory budget) is
        retried after the time it names, at most BUSY_RETRIES times and within ``wait`` in all."""
        deadline, retries = time.monotonic() + wait, 0
        while True:
            try:
                with urllib.request.urlopen(req, timeout=max(deadline - time.monotonic(), 0.1)) as resp:
                    return resp.read()
            except urllib.error.HTTPError as e:
                pause = _retry_after(e)
                if pause is None or retries == BUSY_RETRIES or time.monotonic() + pause >= deadline:
                    raise
                retries += 1
                e.close()
                time.sleep(pause)

    def _http_error(self, e: urllib.error.HTTPError) -> ServerError:
        try:
            payload = json.loads(e.read() or b"{}")
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if not ({"error", "message"} <= payload.keys() or "detail" in payload or e.code == 401):
            # Every MaSkel error is JSON {error, message} (FastAPI's own: {detail}); anything else is
            # some other program listening on this port.
            return ServerError(
                f"another server answered at {self.url} (HTTP {e.code} {e.reason}), not a MaSkel server; "
                "check the server URL and port in the add-on preferences", NOT_MASKEL, e.code,
            )  # fmt: skip
        code = str(payload.get("error") or f"http_{e.code}")
        message = payload.get("message") or payload.get("detail") or e.reason or "no details"
        if not isinstance(message, str):
            message = json.dumps(message)[:300]
        if e.code == 401:
            return ServerError(
                f"the MaSkel server refused the token ({message}); set the token in the add-on preferences",
                code, e.code,
            )  # fmt: skip
        if e.code == 404:
            return ServerError(f"{self.url} has no MaSkel API here (HTTP 404: {message}); check the server URL", code, 404)
        return ServerError(f"MaSkel server error {e.code} ({code}): {message}", code, e.code)

    def health(self, timeout: float | None = 5.0) -> dict:
        """GET /v1/health -> {"model", "resolution", "device", "version", "styles"}."""
        return self._request("GET", "/v1/health", timeout=timeout)

    def mannequin(self) -> dict:
        """GET /v1/mannequin -> the rest-pose mannequin JSON (format maskel-mannequin/1)."""
        data = self._request("GET", "/v1/mannequin")
        if data.get("format") != "maskel-mannequin/1":
            raise ServerError(f"unexpected mannequin format {data.get('format')!r}", BAD_REPLY)
        return data

    def skeleton(self, joints: dict[str, tuple[float, float, float]]) -> dict:
        """POST /v1/skeleton: rest-pose joints (world) -> the phantom's bones fitted to them (maskel-skeleton/1)."""
        data = self._request("POST", "/v1/skeleton", {"joints": {k: [float(c) for c in v] for k, v in joints.items()}})
        if data.get("format") != "maskel-skeleton/1" or not isinstance(data.get("bones"), list):
            raise ServerError(f"unexpected skeleton format {data.get('format')!r}", BAD_REPLY)
        return data

    def xray(self, mask_png: bytes, joints: dict | None = None, style: str = DEFAULT_STYLE, seed: int = 0,
             labels: bool = False, bits: int = 16, sr: bool = False, mirror_average: bool | None = None) -> XrayResult:  # fmt: skip
        """POST /v1/xray: silhouette PNG (+ optional pose JSON) -> X-ray PNG of the same size;
        ``sr``: lifted by the server's diffusion super-resolution (a server started with --sr);
        ``mirror_average``: True averages with the mirror image's drawing (about 2.4 times the
        server's model time), False draws once, None leaves it to the server."""
        body = {"mask": base64.b64encode(mask_png).decode("ascii"), "style": style, "seed": int(seed),
                "labels": bool(labels), "bits": int(bits)}  # fmt: skip
        if joints is not None:
            body["joints"] = joints
        if sr:  # only when asked: servers before the option refuse unknown keys
            body["sr"] = True
        if mirror_average is not None:  # likewise
            body["mirror_average"] = bool(mirror_average)
        reply = self._request("POST", "/v1/xray", body)
        try:
            xray = base64.b64decode(reply["xray"], validate=True)
            lab = reply.get("labels")
            result = XrayResult(
                xray_png=xray, width=int(reply.get("width", 0)), height=int(reply.get("height", 0)),
                style=str(reply.get("style", style)), labels_png=base64.b64decode(lab) if lab else None,
                timings=dict(reply.get("timings") or {}), super_resolution=reply.get("super_resolution"),
            )  # fmt: skip
            w, h = png_size(xray)
        except (KeyError, TypeError, ValueError) as e:
            raise ServerError(f"the server's X-ray reply is malformed ({e})", BAD_REPLY) from None
        mw, mh = png_size(mask_png)
        if (w, h) != (mw, mh):
            raise ServerError(f"the server returned a {w}x{h} X-ray for a {mw}x{mh} mask", BAD_REPLY)
        result.width, result.height = w, h
        return result


def describe_health(health: dict) -> str:
    """One line for the panel from a ``/v1/health`` answer: model, resolution, device, styles."""
    styles = ", ".join(health.get("styles") or []) or "?"
    sr = f", super-resolution {health['super_resolution']}" if health.get("super_resolution") else ""
    return f"{health.get('model', '?')} @ {health.get('resolution', '?')} px on {health.get('device', '?')}, styles {styles}{sr}"


def _reason_text(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    return str(getattr(reason, "strerror", None) or reason)
