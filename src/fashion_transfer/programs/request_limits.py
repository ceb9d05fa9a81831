"""Request bodies bounded before they are read, for the project's web servers: `make serve`
(MLflow's scoring server, serve.py) and `make app` (app/).

- A body whose Content-Length is over the limit is refused, HTTP 413 with the project's
  one-paragraph message, before a byte of it is read.
- A body sent without a length (chunked) is refused, 413 in the same words, once it passes
  the limit: counted as it streams by Starlette's own RequestBodyLimitMiddleware (the app's
  multipart uploads, which Starlette spools to disk), or, for an app that reads each body
  whole anyway (MLflow's scoring server), read here into one buffer first. (Measured: the
  scoring server reading 100 MB chunked bodies in 64 KB pieces until Starlette refused them
  grew by 100 MB a request, memory the allocator kept; one buffer is given back whole.)
- At most `at_once` large bodies (over `SMALL`, or of unknown length) are read and handled at
  a time in a worker; the others wait their turn unread (the server stops reading a connection
  whose request waits), so that a burst of large uploads holds the memory of `at_once` of them
  while small requests (a health check, a photo or two) pass meanwhile."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SMALL = 2**20  # bodies up to this size are never made to wait


def too_large(size: int | None, limit: int, what: str) -> str:
    """The 413 message: how large the body is (when it said), the limit, and what to do."""
    most = f"{limit / 2**20:g} MB"
    said = f"is {size / 2**20:.1f} MB" if size is not None else f"passed {most} before its end"
    return f"The request body {said}; {what} take at most {most}. Send less in each request."


class BoundedBodies:
    """An ASGI app around `app`: the body limit `limit_of(path)` (bytes) enforced before the
    body is read, and at most `at_once` large bodies handled at a time. `error(message)` is
    the JSON the refusal carries (the server's own error format)."""

    def __init__(
        self,
        app: ASGIApp,
        limit_of: Callable[[str], int],
        error: Callable[[str], dict],
        what: str,
        at_once: int = 2,
        whole_bodies: bool = False,
    ):
        self.app, self.limit_of, self.error, self.what = app, limit_of, error, what
        self.at_once, self.whole_bodies = at_once, whole_bodies
        self._gate: asyncio.Semaphore | None = None  # made in the server's event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.limit_of(scope["path"])
        try:
            length = int(headers["content-length"]) if "content-length" in headers else None
        except ValueError:
            length = None  # the server refuses such a request before it gets here
        if length is not None and length > limit:
            await self._refuse(send, length, limit)
            return
        received, refused = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def answer(message: Message) -> None:
            # Starlette's own 413 for a body that passed the limit: said in our words instead.
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 413:
                refused = received > limit
            if refused:
                if message["type"] == "http.response.start":
                    await self._refuse(send, None, limit)
                return
            await send(message)

        limited = RequestBodyLimitMiddleware(self.app, max_body_size=limit)
        chunked = "transfer-encoding" in headers
        try:
            if not chunked and (length or 0) <= SMALL:
                await limited(scope, counted, answer)
                return
            if self._gate is None:
                self._gate = asyncio.Semaphore(self.at_once)
            async with self._gate:
                if chunked and self.whole_bodies:
                    await self._whole(scope, receive, send, limit)
                else:
                    await limited(scope, counted, answer)
        except ClientDisconnect:  # gone before its body was read: there is no one to answer
            pass

    async def _whole(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """The chunked body read into one buffer, then handed to the app in one piece."""
        buffer = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            buffer += message.get("body", b"")
            if len(buffer) > limit:
                del buffer
                await self._refuse(send, None, limit)
                return
            if not message.get("more_body", False):
                break
        body = bytes(buffer)
        del buffer
        given = False

        async def replay() -> Message:
            nonlocal given
            if given:
                return await receive()  # (a disconnect, once the answer is sent)
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int | None, limit: int) -> None:
        body = json.dumps(self.error(too_large(size, limit, self.what))).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
