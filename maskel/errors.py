"""One typed error hierarchy: every error a user can cause, with a code and an HTTP status.

Errors are raised where the problem is found (image decoding, joint parsing, the predictor, the
checkpoint loader); the CLI prints ``str(error)`` as one line and exits 2, the server answers
``{"error": code, "message": str(error)}`` with ``status``. The codes are part of the API
(``maskel.api.ERROR_CODES`` lists them for the OpenAPI schema and the add-on).
"""

from __future__ import annotations

from typing import ClassVar


class MaskelError(Exception):
    """An error caused by the user's input or environment, reported as one line (never a traceback)."""

    code: ClassVar[str] = "bad_input"
    status: ClassVar[int] = 422
    retry_after_s: ClassVar[int | None] = None
    """Seconds after which the same request may succeed (the server sends it as Retry-After)."""


class BadImage(MaskelError):
    """Bytes that are not a decodable PNG (wrong signature, bad CRC, truncated)."""

    code, status = "bad_image", 400


class BadBase64(BadImage):
    code = "bad_base64"


class BadJson(MaskelError):
    code, status = "bad_json", 400


class Unauthorized(MaskelError):
    code, status = "unauthorized", 401


class ForbiddenOrigin(MaskelError):
    """A Host or Origin that is not this server's (DNS rebinding, a web page calling the API)."""

    code, status = "forbidden_host", 403


class RequestTimeout(MaskelError):
    code, status = "request_timeout", 408


class TooLarge(MaskelError):
    """More pixels than the limit (read from the PNG header before anything is decoded)."""

    code, status = "too_large", 413


class BodyTooLarge(TooLarge):
    code = "body_too_large"


class BodyTooComplex(TooLarge):
    """A JSON body with more objects, arrays or items than any valid request holds."""

    code = "body_too_complex"


class InvalidRequest(MaskelError):
    """Well-formed JSON that does not match the request schema."""

    code = "invalid_request"


class BadMask(MaskelError):
    """A decodable image that is no usable silhouette (empty, full, wrong shape)."""

    code = "bad_mask"


class UnknownStyle(MaskelError):
    code = "unknown_style"


class BadJoints(MaskelError):
    code = "bad_joints"


class NoSuperResolution(MaskelError):
    """Super-resolution asked of a predictor (a server) started without an SR checkpoint."""

    code = "no_super_resolution"


class Busy(MaskelError):
    """The server is at its queue or memory budget; retry shortly."""

    code, status, retry_after_s = "busy", 503, 1


class Unavailable(MaskelError):
    """A feature whose optional parts are not installed (the render extras)."""

    code, status = "unavailable", 503


class BadCheckpoint(MaskelError):
    """A checkpoint that is missing, pickled, corrupt, or whose metadata is out of range."""

    code = "bad_checkpoint"


class OutputError(MaskelError):
    """An output that cannot be written (read-only directory, disk full)."""

    code = "output_error"


ALL_ERRORS: tuple[type[MaskelError], ...] = (
    MaskelError, BadImage, BadBase64, BadJson, Unauthorized, ForbiddenOrigin, RequestTimeout, TooLarge,
    BodyTooLarge, BodyTooComplex, InvalidRequest, BadMask, UnknownStyle, BadJoints, NoSuperResolution, Busy,
    Unavailable,
)  # fmt: skip
"""The errors the server can answer with (BadCheckpoint and OutputError are CLI/startup only)."""
