"""The server's outer ASGI layer: one access-log line per request, the bearer token, the body limit.

It sits outside FastAPI so that a refused request (401, 413) never reaches the app, and a body
over the limit is refused from its Content-Length before it is read (or, when streamed without
one, as soon as the running count passes the limit).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger("maskel.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_error(send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Access log + ``Authorization: Bearer <token>`` (constant-time) + request body limit."""

    def __init__(self, app: ASGIApp, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes

    def _authorised(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        got = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, value = got.partition(b" ")
        return hmac.compare_digest(value.strip() if scheme.lower() == b"bearer" else b"", self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = {"status": 0, "out": 0, "in": 0, "refused": False}

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
                scope.get("method"), scope.get("path"), state["status"] or "-", state["in"], state["out"],
                (time.perf_counter() - start) * 1000,
            )  # fmt: skip

    async def _handle(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]) -> None:
        if not self._authorised(scope):
            await send_error(send, 401, "unauthorized", "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")])
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await send_error(send, 413, "body_too_large", f"request body of {int(length)} bytes exceeds {self.max_body_bytes} bytes")
            return

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not state["refused"]:
                state["in"] += len(message.get("body", b""))
                if state["in"] > self.max_body_bytes:
                    state["refused"] = True
                    await send_error(send, 413, "body_too_large", f"request body exceeds {self.max_body_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not state["refused"]:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
