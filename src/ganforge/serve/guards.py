"""ASGI middleware in front of the serve app: a request-body cap and a Host-header check.

Both answer in the API's error shape, ``{"detail": "..."}``, and quote no more than a short
prefix of what the client sent. They are plain ASGI (no FastAPI or Starlette import), so they
behave the same with any version of either.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ..errors import UserError
from ..sampling import shorten

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: a request body is a few hundred bytes of JSON
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("", "0.0.0.0", "::")


async def send_error(send: Send, status: int, detail: str) -> None:
    """A complete JSON error response ``{"detail": detail}`` with ``status``."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case) in ``scope``, decoded as latin-1; None if absent."""
    return next((value.decode("latin-1") for key, value in scope.get("headers", ()) if key.lower() == name), None)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with a 413, reading at most ``max_bytes`` plus one chunk.

    A declared ``Content-Length`` over the cap is refused before any of the body is read. A
    body without one (chunked) is counted as it arrives: once the count passes the cap, the
    413 goes out, the app is told the client left (``http.disconnect``, which every ASGI app
    handles) and whatever it sends afterwards is dropped, so nothing buffers more than that.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if max_bytes < 1:
            raise UserError(f"the request body limit must be >= 1 byte, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body too large: the limit is {self.max_bytes} bytes"
        declared = header(scope, b"content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                return await send_error(send, 400, f"invalid Content-Length header '{shorten(declared)}'")
            if int(declared) > self.max_bytes:
                return await send_error(send, 413, too_large)
        received = 0
        started = cut = False

        async def counted_receive() -> Message:
            nonlocal received, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    cut = True
                    if not started:
                        await send_error(send, 413, too_large)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut:  # the 413 (or a cut-off response) is all the client gets
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, guarded_send)


def host_name(host_header: str) -> str:
    """The host part of a ``Host`` header, lower case, without port or IPv6 brackets."""
    text = host_header.strip().lower()
    if text.startswith("["):  # [::1]:8000
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        return text.split(":", 1)[0]
    return text


def check_host_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Allowed-host patterns, normalised: names, addresses, ``*.domain`` or ``*`` (any host)."""
    clean = tuple(host_name(p) if p.strip().startswith("[") else p.strip().lower() for p in patterns)
    if not clean or not all(clean):
        raise UserError(f"allowed hosts must be non-empty names, got {shorten(','.join(patterns), 60)!r}")
    for pattern in clean:
        if "*" in pattern and not (pattern == "*" or (pattern.startswith("*.") and "*" not in pattern[1:])):
            raise UserError(f"allowed host '{shorten(pattern)}' is not a name, '*.domain' or '*'")
    return clean


class HostCheck:
    """Answer only requests whose ``Host`` header names an allowed host; others get a 400.

    A server on localhost is reachable from any web page the user opens: a page on
    ``evil.example`` whose DNS answer flips to 127.0.0.1 (DNS rebinding) sends requests with
    ``Host: evil.example``, which this refuses.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = LOOPBACK_HOSTS) -> None:
        self.app = app
        self.allowed = check_host_patterns(allowed_hosts)
        self.allow_any = "*" in self.allowed

    def allows(self, host: str) -> bool:
        return self.allow_any or any(host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in self.allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] != "http":  # the app has no websockets
            return await self.app(scope, receive, send)
        given = header(scope, b"host")
        if given is None:
            return await send_error(send, 400, "missing Host header")
        if not self.allows(host_name(given)):
            return await send_error(
                send, 400, f"Host '{shorten(given)}' is not allowed (allowed: {', '.join(self.allowed)}; "
                "ganforge serve --allowed-hosts adds names)"
            )
        await self.app(scope, receive, send)


def default_allowed_hosts(bind_host: str) -> tuple[str, ...]:
    """The loopback names, plus the address the server listens on unless it is every interface."""
    bound = host_name(f"[{bind_host}]" if ":" in bind_host else bind_host)
    return LOOPBACK_HOSTS if bound in ANY_ADDRESS or bound in LOOPBACK_HOSTS else (*LOOPBACK_HOSTS, bound)
