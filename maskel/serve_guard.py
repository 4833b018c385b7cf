"""The server's outer ASGI layer: everything that is refused before a request reaches the app.

In order: the Host and Origin check (without a token only loopback names and the configured host
are served, so a web page cannot reach the API through DNS rebinding or a cross-site form; no CORS
headers are ever sent), ``Authorization: Bearer <token>`` (constant-time), the body limits, and
one access-log line per request with the path escaped (a ``%0a`` cannot forge a log line).

The body limits act as the body streams in, on the event loop but a chunk at a time: its size
(from Content-Length before anything is read, then the running count), its JSON structure (at most
``max_json_items`` of ``{ [ ,``, so no body can cost more to parse than one long string; a
base64 mask has none of them), and a stall of more than ``body_timeout_s`` between chunks (408).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from maskel.errors import (
    BodyTooComplex,
    BodyTooLarge,
    ForbiddenOrigin,
    MaskelError,
    RequestTimeout,
    Unauthorized,
)

log = logging.getLogger("maskel.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """``example.com:8765`` / ``[::1]:8765`` / ``127.0.0.1`` -> the host part, lower-case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def escape(text: Any, limit: int = 200) -> str:
    """One log-safe line: control and non-ASCII characters escaped, cut at ``limit``."""
    out = str(text).encode("unicode_escape").decode("ascii")
    return out if len(out) <= limit else out[:limit] + "..."


async def send_error(send: Send, error: MaskelError, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": error.code, "message": str(error)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"), *(headers or [])],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Host/Origin check + bearer token + body limits + access log, in front of the app."""

    def __init__(self, app: ASGIApp, token: str | None, max_body_bytes: int, host: str = "127.0.0.1",
                 max_json_items: int = 4096, body_timeout_s: float = 30.0) -> None:  # fmt: skip
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes
        self.max_json_items = max_json_items
        self.body_timeout_s = body_timeout_s
        self.host = host.lower()

    def _own_host(self, name: str) -> bool:
        return is_loopback(name) or name == self.host

    def _check(self, headers: dict[bytes, bytes]) -> MaskelError | None:
        if self.token is None:
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            if not self._own_host(host):
                return ForbiddenOrigin(f"Host {escape(host, 60)!r} is not this server's (without --token only "
                                       "loopback names and the --host address are served)")  # fmt: skip
            origin = headers.get(b"origin")
            if origin is not None:
                name = urllib.parse.urlsplit(origin.decode("latin-1")).hostname or ""
                if not self._own_host(name):
                    return ForbiddenOrigin("requests from web pages are refused (no CORS)")
            return None
        got = headers.get(b"authorization", b"")
        scheme, _, value = got.partition(b" ")
        if not hmac.compare_digest(value.strip() if scheme.lower() == b"bearer" else b"", self.token):
            return Unauthorized("missing or wrong bearer token")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = {"status": 0, "out": 0, "in": 0, "items": 0, "refused": False, "body_done": False}

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self._handle(scope, receive, logged_send, state)
        finally:
            log.info(
                "%s %s %s in=%dB out=%dB %.1fms",
                escape(scope.get("method"), 16), escape(scope.get("path")), state["status"] or "-", state["in"],
                state["out"], (time.perf_counter() - start) * 1000,
            )  # fmt: skip

    async def _handle(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]) -> None:
        headers = dict(scope.get("headers") or [])
        refused = self._check(headers)
        if refused is not None:
            extra = [(b"www-authenticate", b"Bearer")] if isinstance(refused, Unauthorized) else None
            await send_error(send, refused, extra)
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await send_error(send, BodyTooLarge(f"request body of {int(length)} bytes exceeds {self.max_body_bytes} bytes"))
            return

        async def refuse(error: MaskelError) -> Message:
            state["refused"] = True
            await send_error(send, error)
            return {"type": "http.disconnect"}

        async def limited_receive() -> Message:
            if state["refused"]:
                return {"type": "http.disconnect"}
            if state["body_done"]:  # after the body: waits for the client to leave (see serve.watch_disconnect)
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout_s)
            except TimeoutError:
                return await refuse(RequestTimeout(f"the request body stalled for more than {self.body_timeout_s:g} s"))
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            state["in"] += len(chunk)
            state["items"] += chunk.count(b"{") + chunk.count(b"[") + chunk.count(b",")
            state["body_done"] = not message.get("more_body", False)
            if state["in"] > self.max_body_bytes:
                return await refuse(BodyTooLarge(f"request body exceeds {self.max_body_bytes} bytes"))
            if state["items"] > self.max_json_items:
                return await refuse(BodyTooComplex(
                    f"the request body holds more than {self.max_json_items} JSON objects, arrays or items "
                    "(a pose has at most 64 joints)"))  # fmt: skip
            return message

        async def guarded_send(message: Message) -> None:
            if not state["refused"]:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
