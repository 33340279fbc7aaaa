"""A fake Eventory for the benchmark: asyncio, standard library only, HTTP/1.1 keep-alive.

It must never be the bottleneck, so it is an `asyncio.Protocol` with a hand-rolled parser
(asyncio streams and `http.server` are several times slower) and precomputed answers.

Routes (every route also takes `delay_ms=N`, answering N ms late; the backend forwards the
query string as sent, so the same knob works through `/eventory/...` and `/multisite/...`):

    POST /login-json        form username, password -> {"access_token": ...}; any non-empty pair
    GET  /user-info         {"organizationName", "firstName", "lastName"} of the token's user
    GET  /jobs/list         a small JSON list (about 150 bytes)
    GET  /download?size=N   N deterministic bytes, streamed in 64 KiB chunks, with Content-Length
    GET  /big-json?size=N   a JSON array of exactly N bytes (N >= 2): 8-character strings, the last
                            one padded to fit; deterministic, streamed in chunks of at most 64 KiB,
                            with Content-Length (see `big_json_chunks`)
    GET  /calls?path=P      {"calls": n}: how many requests for path P it has received (no token)

All but /login-json want `Authorization: Bearer <token from login-json>` (401 otherwise), so a
relayed call does the same work as a real one. Run it as a script: it prints `PORT <n>` once
it listens on 127.0.0.1 (port 0 = a free one) and serves until killed or `--max-seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import signal
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qs

CHUNK = 64 * 1024
MAX_DELAY_MS = 10_000
MAX_DOWNLOAD = 8 * 1024**3
MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024

# The download's content: byte k is BLOCK[k % CHUNK]. Built once, so a 200 MB answer costs
# 64 KiB of memory, and anyone can recompute its SHA-256 (see `expected_sha256`).
BLOCK = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(CHUNK // 32))

# /big-json's content: '[', then items '"0000002a",' (11 bytes each, the counter restarting every
# JSON_BLOCK), then a last string padded with 'z' to fill, then ']'. One block held, never the answer.
JSON_ITEM = 11
JSON_BLOCK = b"".join(b'"%08x",' % i for i in range(CHUNK // JSON_ITEM))
JSON_BLOCK_ITEMS = CHUNK // JSON_ITEM

JOBS = json.dumps(
    [
        {"id": 101, "name": "Spring gala", "start": "2025-05-01", "status": "confirmed"},
        {"id": 102, "name": "Summer fair", "start": "2025-06-14", "status": "tentative"},
    ],
    separators=(",", ":"),
).encode()

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    501: "Not Implemented",
}


def expected_sha256(size: int) -> str:
    """The SHA-256 of `/download?size=<size>`, without a server."""
    digest = hashlib.sha256()
    full, rest = divmod(size, CHUNK)
    for _ in range(full):
        digest.update(BLOCK)
    digest.update(BLOCK[:rest])
    return digest.hexdigest()


def big_json_chunks(size: int) -> Iterator[bytes | memoryview]:
    """`/big-json?size=<size>`'s body in pieces of at most 64 KiB: exactly `size` bytes (at least 2)
    of one JSON array, without a server. The same size always gives the same bytes."""
    if size < 2:
        raise ValueError("a JSON array takes at least 2 bytes")
    if size < 4:  # too short for a string: '[]' or '[ ]'
        yield b"[" + b" " * (size - 2) + b"]"
        return
    # '[' + items full items + '"' + pad + '"' + ']' = size, with 0 <= pad < JSON_ITEM.
    items, pad = divmod(size - 4, JSON_ITEM)
    yield b"["
    view = memoryview(JSON_BLOCK)
    blocks, rest = divmod(items, JSON_BLOCK_ITEMS)
    for _ in range(blocks):
        yield view
    if rest:
        yield view[: rest * JSON_ITEM]
    yield b'"' + b"z" * pad + b'"]'


def big_json_length(size: int) -> int:
    """How many strings the array of `/big-json?size=<size>` holds."""
    return 0 if size < 4 else (size - 4) // JSON_ITEM + 1


def download_chunks(size: int) -> Iterator[memoryview]:
    """`/download?size=<size>`'s body in pieces of CHUNK bytes (the last one shorter)."""
    view = memoryview(BLOCK)
    full, rest = divmod(size, CHUNK)
    for _ in range(full):
        yield view
    if rest:
        yield view[:rest]


def token_for(username: str) -> str:
    # Deterministic, so repeated sign-ins of one user agree, and distinct per user.
    return "fake." + hashlib.sha256(b"eventory:" + username.encode()).hexdigest()[:40]


def head(status: int, length: int, content_type: str = "application/json", close: bool = False) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
    ]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def json_response(status: int, payload: bytes, close: bool = False) -> bytes:
    return head(status, len(payload), close=close) + payload


# Routes answered by `FakeEventory.stream`: path -> (chunks of the body for a size, its type, least size).
STREAMED = {
    "/download": (download_chunks, "application/octet-stream", 0),
    "/big-json": (big_json_chunks, "application/json", 2),
}

# Answers sent on every hot-path request, built once.
JOBS_RESPONSE = json_response(200, JOBS)
UNAUTHORIZED = json_response(401, b'{"detail":"Not authenticated"}')


class Request:
    __slots__ = ("method", "path", "query", "headers", "body", "close")

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, close: bool):
        self.method, self.path, self.query, self.headers, self.body, self.close = (
            method,
            path,
            query,
            headers,
            body,
            close,
        )


class FakeEventory(asyncio.Protocol):
    """One connection. Requests are answered in order; while one is delayed or streaming,
    later pipelined requests wait in the buffer."""

    users: dict[str, str] = {}  # token -> username, shared by all connections
    calls: Counter[str] = Counter()  # requests received per path, shared by all connections

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.task: asyncio.Task[None] | None = None
        self.can_write = asyncio.Event()
        self.can_write.set()

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # Large enough that a 64 KiB chunk never stalls on its own, small enough to stay bounded.
        transport.set_write_buffer_limits(high=512 * 1024)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.process()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()
        self.can_write.set()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    # --- parsing ----------------------------------------------------------------------------
    def process(self) -> None:
        while not self.busy and self.transport is not None and not self.transport.is_closing():
            request = self.parse()
            if request is None:
                return
            try:
                self.dispatch(request)
            except ValueError:  # a malformed number in the query
                self.fail(400)

    def parse(self) -> Request | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self.fail(400)
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            self.fail(400)
            return None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.fail(501)  # the benchmark never sends chunked bodies
            return None
        length = int(headers.get("content-length") or 0)
        if length > MAX_BODY:
            self.fail(413)
            return None
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        path, _, query = target.partition("?")
        connection = headers.get("connection", "").lower()
        close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
        return Request(method, path, query, headers, body, close)

    def fail(self, status: int) -> None:
        assert self.transport is not None
        self.transport.write(json_response(status, b'{"detail":"bad request"}', close=True))
        self.transport.close()

    # --- routes -----------------------------------------------------------------------------
    def dispatch(self, request: Request) -> None:
        self.calls[request.path] += 1
        params = parse_qs(request.query) if request.query else {}
        delay = min(int(params.get("delay_ms", ["0"])[0] or 0), MAX_DELAY_MS)
        route = STREAMED.get(request.path)
        if route is not None and request.method == "GET" and self.user(request):
            chunks, content_type, least = route
            size = min(int(params.get("size", ["0"])[0] or 0), MAX_DOWNLOAD)
            if size >= least:
                self.later(self.stream(chunks(size), size, content_type, delay / 1000, request.close))
                return
        answer = self.answer(request)
        if delay > 0:
            self.later(self.delayed(answer, delay / 1000, request.close))
        else:
            self.send(answer, request.close)

    def answer(self, request: Request) -> bytes:
        if request.path == "/calls":
            path = parse_qs(request.query).get("path", [""])[0]
            return json_response(200, json.dumps({"calls": self.calls[path]}).encode())
        if request.path == "/login-json":
            if request.method != "POST":
                return json_response(405, b'{"detail":"Method Not Allowed"}')
            form = parse_qs(request.body.decode("latin-1"))
            username = form.get("username", [""])[0]
            if not username or not form.get("password", [""])[0]:
                return json_response(401, b'{"detail":"Incorrect username or password"}')
            token = token_for(username)
            self.users[token] = username
            return json_response(200, json.dumps({"access_token": token, "token_type": "bearer"}).encode())
        user = self.user(request)
        if user is None:
            return UNAUTHORIZED
        if request.path == "/big-json" and request.method == "GET":  # a size too small for a JSON array
            return json_response(400, b'{"detail":"size must be at least 2"}')
        if request.path == "/jobs/list":
            return JOBS_RESPONSE
        if request.path == "/user-info":
            info = {"organizationName": f"Org of {user}", "firstName": "Bench", "lastName": user}
            return json_response(200, json.dumps(info).encode())
        return json_response(404, b'{"detail":"Not Found"}')

    def user(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return self.users.get(auth[7:]) if auth[:7].lower() == "bearer " else None

    # --- sending ----------------------------------------------------------------------------
    def send(self, data: bytes, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if close:
            self.transport.close()

    def later(self, coroutine) -> None:
        self.busy = True
        self.task = asyncio.get_running_loop().create_task(coroutine)
        self.task.add_done_callback(self.done)

    def done(self, _task: asyncio.Task[None]) -> None:
        self.task = None
        self.busy = False
        self.process()

    async def delayed(self, answer: bytes, seconds: float, close: bool) -> None:
        await asyncio.sleep(seconds)
        self.send(answer, close)

    async def stream(
        self, chunks: Iterable[bytes | memoryview], size: int, content_type: str, delay: float, close: bool
    ) -> None:
        """Answer `size` bytes made of `chunks` (each at most CHUNK), never holding the whole answer."""
        if delay:
            await asyncio.sleep(delay)
        assert self.transport is not None
        self.transport.write(head(200, size, content_type))
        for chunk in chunks:
            if self.transport.is_closing():
                break
            await self.can_write.wait()  # honour flow control: memory stays bounded
            self.transport.write(chunk)
        if close:
            self.transport.close()


async def serve(port: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FakeEventory, "127.0.0.1", port, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # Bounded even if the parent forgets to kill us.
        await asyncio.wait_for(stop.wait(), timeout=max_seconds)
    except TimeoutError:
        print("fake eventory: --max-seconds reached, stopping", file=sys.stderr)
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.max_seconds))


if __name__ == "__main__":
    main()
