"""A fake Eventory API server for the tests and the bench alike (standard library only).

A real HTTP/1.1 server on 127.0.0.1, served by one asyncio loop so that it outpaces the backend
by far. The tests run it in-process, its loop in a daemon thread::

    with FakeEventory() as fake:
        requests.get(fake.url + "/echo")

The bench runs it as a process that prints ``PORT <n>`` once it listens and serves until killed
or until ``--max-seconds`` have passed::

    python tests/fake_eventory.py --port 0 --any-user --max-seconds 900

See the ``FakeEventory`` docstring for the routes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import gzip
import hashlib
import http
import inspect
import json
import random
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from email import policy as email_policy
from email.parser import BytesParser
from email.utils import formatdate

__all__ = [
    "FakeEventory", "DEFAULT_USERS", "DOWNLOAD_DEFAULT_SIZE", "DOWNLOAD_MAX_SIZE", "DOWNLOAD_CHUNK_SIZE",
    "download_chunks", "download_sha256", "big_json_chunks", "GZIP_PLAIN", "GZIP_BODY", "LOGO_BYTES",
    "HELD_FIRST", "HELD_REST", "RESET_DECLARED_LENGTH", "RESET_SENT_BYTES"
]  # fmt: skip


def _user(password, organisation, first, last) -> dict:
    return {"password": password, "organizationName": organisation, "firstName": first, "lastName": last}


DEFAULT_USERS = {"anna@example.com": _user("eventory-pass-1", "Org One", "Anna", "Andersson")}

# --- Deterministic payloads --------------------------------------------------------------------------

DOWNLOAD_CHUNK_SIZE = 64 * 1024
DOWNLOAD_DEFAULT_SIZE = 10 * 1024 * 1024
# Streamed one block at a time, so a large size costs time, never memory.
DOWNLOAD_MAX_SIZE = 8 * 1024 * 1024 * 1024

_BASE_BLOCK = random.Random(1234).randbytes(DOWNLOAD_CHUNK_SIZE)


def _download_block(index: int) -> bytes:
    """Block ``index`` (64 KiB): the base block rotated, with the index mixed in."""
    r = (index * 7919) % DOWNLOAD_CHUNK_SIZE
    rotated = _BASE_BLOCK[r:] + _BASE_BLOCK[:r]
    return index.to_bytes(8, "little") + rotated[8:]


def download_chunks(size: int):
    """Yield the ``size`` bytes served by ``GET /download?size=size``, in chunks of at most 64 KiB."""
    size = max(0, int(size))
    for index, start in enumerate(range(0, size, DOWNLOAD_CHUNK_SIZE)):
        yield _download_block(index)[: size - start]


@functools.lru_cache(maxsize=32)
def download_sha256(size: int) -> str:
    """Hex SHA-256 of the body of ``GET /download?size=size``."""
    h = hashlib.sha256()
    for chunk in download_chunks(size):
        h.update(chunk)
    return h.hexdigest()


# /big-json: '[', items '"0000002a",' (11 bytes, the counter restarting every block), a last string
# padded with 'z' to fit, ']'. No whitespace, so the array serialises back to the very same bytes.
_JSON_ITEM = 11
_JSON_BLOCK_ITEMS = DOWNLOAD_CHUNK_SIZE // _JSON_ITEM
_JSON_BLOCK = b"".join(b'"%08x",' % i for i in range(_JSON_BLOCK_ITEMS))


def big_json_chunks(size: int):
    """Yield the body of ``GET /big-json?size=size`` (``size`` >= 2), one JSON array of exactly
    ``size`` bytes, in pieces of at most 64 KiB."""
    if size < 4:  # too short for a string: '[]' or '[ ]'
        yield b"[" + b" " * (size - 2) + b"]"
        return
    items, pad = divmod(size - 4, _JSON_ITEM)
    yield b"["
    view = memoryview(_JSON_BLOCK)
    blocks, rest = divmod(items, _JSON_BLOCK_ITEMS)
    for _ in range(blocks):
        yield view
    if rest:
        yield view[: rest * _JSON_ITEM]
    yield b'"' + b"z" * pad + b'"]'


_CATEGORIES = ["lighting", "sound", "stage", "video", "power"]
_ITEMS = [
    {"id": i, "name": f"Item {i}", "category": _CATEGORIES[i % 5], "quantity": (i * 37) % 101,
     "description": f"Deterministic test item number {i} for gzip pass-through."}
    for i in range(160)
]  # fmt: skip
GZIP_PLAIN: bytes = json.dumps({"items": _ITEMS}, separators=(",", ":")).encode("utf-8")
GZIP_BODY: bytes = gzip.compress(GZIP_PLAIN, compresslevel=9, mtime=0)

LOGO_BYTES: bytes = b"\x89PNG\r\n\x1a\n" + (bytes(range(256)) * 16)[:4000]

HELD_FIRST: bytes = b"first part of a held answer;" * 100
HELD_REST: bytes = b"the rest, once released." * 100

RESET_DECLARED_LENGTH = 100_000
RESET_SENT_BYTES = 1000


@functools.lru_cache(maxsize=1024)
def _jobs_body(organisation: str) -> bytes:
    return json.dumps([{"id": i, "name": f"Job {i}", "organisation": organisation} for i in (1, 2, 3)]).encode()


# --- HTTP plumbing -----------------------------------------------------------------------------------

_JSON = "application/json"
_OCTETS = "application/octet-stream"
_MAX_HEAD = 1024 * 1024
_MAX_BUFFER = 1024 * 1024  # read no further while this much waits unread: uploads stay bounded
_PIECE = 64 * 1024
_MAX_DELAY_MS = 10_000


@functools.cache
def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\nServer: FakeEventory/1.0\r\n".encode("latin-1")


@functools.lru_cache(maxsize=2)
def _date_line(second: int) -> bytes:
    return b"Date: " + formatdate(second, usegmt=True).encode("latin-1") + b"\r\n"


class _BadRequest(Exception):
    pass


class _Request:
    """One request: its head, and its body as bytes (`body`) or still to be read (`left`)."""

    __slots__ = ("method", "target", "path", "query", "version", "headers", "close", "body", "chunked", "left")

    def __init__(self, method="GET", target="/", version="HTTP/1.1", headers=None, close=True):
        self.method, self.target, self.version = method, target, version
        self.path, _, self.query = target.partition("?")
        self.headers = headers if headers is not None else {}
        self.close = close
        self.body: bytes | None = b""
        self.chunked = False
        self.left = 0


class _Connection(asyncio.Protocol):
    """One client connection. Requests are answered in order: at once when they need no waiting
    (the hot path), or by a task while later pipelined requests wait in the buffer."""

    def __init__(self, fake: FakeEventory):
        self.fake = fake
        self.buffer = bytearray()
        self.busy = False
        self.eof = False
        self.reading_paused = False
        self.waiter: asyncio.Future | None = None
        self.task: asyncio.Task | None = None
        self.req = _Request()
        self.started = False  # the current request's answer has begun
        self.aborted = False  # ... or the connection was dropped on purpose

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.peer_port = transport.get_extra_info("peername")[1]
        self.can_write = asyncio.Event()
        self.can_write.set()
        transport.set_write_buffer_limits(high=512 * 1024)
        self.fake._connections.add(self)

    def data_received(self, data):
        self.buffer += data
        if len(self.buffer) > _MAX_BUFFER and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        if self.busy:
            self._wake()
        else:
            self._process()

    def eof_received(self):
        self.eof = True
        self._wake()
        if not self.busy:
            self._process()
        return True  # half-closed: still answer what was asked

    def connection_lost(self, exc):
        self.fake._connections.discard(self)
        self.eof = True
        self._wake()
        self.can_write.set()
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self):
        self.can_write.clear()

    def resume_writing(self):
        self.can_write.set()

    def _wake(self):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # -- reading ----------------------------------------------------------

    def _process(self):
        while not self.busy and not self.transport.is_closing():
            try:
                req = self._parse_head()
            except _BadRequest as exc:
                self.req, self.started = _Request(), False
                self._json(400, {"detail": str(exc)})
                self.transport.close()
                return
            if req is None:
                if self.eof:
                    self.transport.close()
                return
            self.req, self.started, self.aborted = req, False, False
            self._dispatch(req)
        self._maybe_resume()

    def _parse_head(self) -> _Request | None:
        buf = self.buffer
        while buf[:2] == b"\r\n":  # stray line ends between requests
            del buf[:2]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > _MAX_HEAD:
                raise _BadRequest("request head too large")
            return None
        lines = buf[:end].decode("latin-1").split("\r\n")
        words = lines[0].split(" ")
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            raise _BadRequest(f"bad request line {lines[0][:100]!r}")
        method, target, version = words
        headers: dict = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest("bad header line")
            key, value = name.strip().lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        connection = headers.get("connection", "").lower()
        close = connection == "close" or (version < "HTTP/1.1" and connection != "keep-alive")
        req = _Request(method, target, version, headers, close)
        del buf[: end + 4]
        if "chunked" in headers.get("transfer-encoding", "").lower():
            req.body, req.chunked = None, True
        else:
            text = headers.get("content-length", "").strip() or "0"
            if not text.isdigit():
                raise _BadRequest("invalid Content-Length")
            length = int(text)
            if length <= len(buf):
                req.body = bytes(buf[:length])
                del buf[:length]
            else:
                req.body, req.left = None, length
        if req.body is None and headers.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return req

    def _maybe_resume(self):
        if self.reading_paused and len(self.buffer) < _MAX_BUFFER // 2 and not self.transport.is_closing():
            self.reading_paused = False
            self.transport.resume_reading()

    async def _more(self):
        """Wait until the client sends more (ConnectionError if it will not)."""
        if self.eof:
            raise ConnectionError("client closed during the request")
        self._maybe_resume()
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    async def _take(self, limit: int) -> bytes:
        while not self.buffer:
            await self._more()
        piece = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        return piece

    async def _line(self) -> bytes:
        while (end := self.buffer.find(b"\n")) < 0:
            if len(self.buffer) > 65536:
                raise _BadRequest("line too long")
            await self._more()
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    async def _body_piece(self, req: _Request) -> bytes:
        """The next piece of the request body, b"" once it has all been read."""
        if req.body is not None:
            piece, req.body = req.body, b""
            return piece
        if req.chunked and req.left == 0:
            try:
                size = int((await self._line()).split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("invalid chunk size") from None
            if size < 0:
                raise _BadRequest("invalid chunk size")
            if size == 0:
                while (await self._line()) not in (b"\r\n", b"\n"):  # trailers, until the empty line
                    pass
                req.body = b""
                return b""
            req.left = size
        piece = await self._take(min(req.left, _PIECE))
        req.left -= len(piece)
        if req.left == 0:
            if req.chunked:
                await self._line()  # CRLF after the chunk data
            else:
                req.body = b""
        return piece

    async def _read_body(self) -> bytes:
        pieces = []
        while piece := await self._body_piece(self.req):
            pieces.append(piece)
        return b"".join(pieces)

    # -- writing ----------------------------------------------------------

    def _respond(self, status, body=b"", content_type=_JSON, headers=(), content_length=None):
        self.started = True
        req = self.req
        head = _status_line(status) + _date_line(int(time.time()))
        if status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            if content_type:
                head += b"Content-Type: " + content_type.encode("latin-1") + b"\r\n"
            head += b"Content-Length: %d\r\n" % (len(body) if content_length is None else content_length)
        for name, value in headers:
            head += f"{name}: {value}\r\n".encode("latin-1")
        if req.close and not any(name.lower() == "connection" for name, _ in headers):
            head += b"Connection: close\r\n"
        if req.method == "HEAD":
            body = b""
        self.transport.write(head + b"\r\n" + body)

    def _json(self, status, obj, headers=()):
        self._respond(status, json.dumps(obj).encode("utf-8"), _JSON, headers)

    def _not_found(self, user=None, arg=None):
        self._json(404, {"detail": "Not Found"})

    async def _write(self, data):
        if self.transport.is_closing():
            raise ConnectionError("client went away")
        self.transport.write(data)
        await self.can_write.wait()  # honour flow control: memory stays bounded

    async def _stream(self, content_type, size, chunks):
        self._respond(200, b"", content_type, content_length=size)
        if self.req.method != "HEAD":
            for chunk in chunks:
                await self._write(chunk)

    def _abort(self):
        """Reset the connection (RST), mid-answer."""
        self.aborted = True
        sock = self.transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.transport.abort()

    # -- dispatch ---------------------------------------------------------

    def _dispatch(self, req: _Request):
        fake = self.fake
        fake._log_request(req, self.peer_port)
        outage = fake.outage
        echo = req.path == "/echo" or req.path.startswith("/echo/")
        if outage == "drop":
            self.aborted = True
            self.transport.close()
            return
        if outage is not None and not echo:
            handler, arg, auth = self._outage, outage, False
        else:
            handler, arg, auth = self._route(req, echo)
        delay = fake.delay if auth else 0.0
        if "delay_ms=" in req.query:
            values = urllib.parse.parse_qs(req.query).get("delay_ms", ["0"])
            delay += min(int(values[0]) if values[0].isdigit() else 0, _MAX_DELAY_MS) / 1000
        if delay > 0 or req.body is None or inspect.iscoroutinefunction(handler):
            self.busy = True
            self.task = self.loop.create_task(self._serve(req, handler, arg, auth, delay))
            self.task.add_done_callback(self._served)
            return
        try:
            self._call(handler, arg, auth)
        except Exception as exc:  # a bug in the fake: answer 500 rather than hang
            self._failed(exc)
        if req.close and not self.aborted:
            self.transport.close()

    def _call(self, handler, arg, auth):
        """Run `handler(user, arg)`, after the token check if `auth` (401 without a valid one)."""
        user = None
        if auth:
            user = self.fake._user_for_auth_header(self.req.headers.get("authorization"))
            if user is None:
                return self._json(401, {"detail": "Could not validate credentials"}, [("WWW-Authenticate", "Bearer")])
        return handler(user, arg)

    async def _serve(self, req, handler, arg, auth, delay):
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            answer = self._call(handler, arg, auth)
            if inspect.isawaitable(answer):
                await answer
            if not self.aborted:
                while await self._body_piece(req):  # keep the connection in sync
                    pass
        except _BadRequest as exc:
            req.close = True
            if not self.started:
                self._json(400, {"detail": str(exc)})
        except (OSError, ConnectionError):
            # Client vanished, connection aborted on purpose, or server stopping.
            self.aborted = True
            self.transport.abort()
        except Exception as exc:  # a bug in the fake: answer 500 rather than hang
            self._failed(exc)
        if req.close and not self.aborted:
            self.transport.close()

    def _served(self, task):
        self.task = None
        self.busy = False
        if not task.cancelled():
            task.exception()  # retrieved: _serve handles its own errors
            self._process()

    def _failed(self, exc):
        self.req.close = True
        if self.started:
            self.aborted = True
            self.transport.abort()
        else:
            self._json(500, {"detail": f"fake error: {exc!r}"})

    # GET and HEAD: path -> (handler, whether it wants a token)
    _GETS = {
        "/user-info": ("_user_info", True),
        "/logo": ("_logo", True),
        "/jobs/list": ("_jobs", True),
        "/big-json": ("_big_json", True),
        "/inventory-rentals": ("_inventory_rentals", True),
        "/broken-json": ("_broken_json", True),
        "/held": ("_held", True),
        "/download": ("_download", False),
        "/gzip": ("_gzip", False),
        "/slow": ("_slow", False),
        "/reset": ("_reset", False),
        "/redirect": ("_redirect", False),
        "/redirect-away": ("_redirect", False),
        "/redirect-relative": ("_redirect", False),
        "/calls": ("_calls", False),
    }

    def _route(self, req, echo):
        """(handler, its argument, whether it wants a token) for a request."""
        path, method = req.path, req.method
        if echo:
            return self._echo, None, False
        if path == "/login-json":
            return (self._login if method == "POST" else self._not_found), None, False
        if method in ("GET", "HEAD"):
            if path in self._GETS:
                name, auth = self._GETS[path]
                return getattr(self, name), None, auth
            if path.startswith("/status/"):
                return self._status, path[len("/status/") :], False
            if path.startswith("/pack-lists/details/"):
                pid = _parse_int(path[len("/pack-lists/details/") :])
                if pid is not None:
                    return self._pack_list_details, pid, True
        elif method == "PUT" and path.startswith("/pack-list-rentals/"):
            pid = _parse_int(path[len("/pack-list-rentals/") :])
            if pid is not None:
                return self._pack_list_rental_update, pid, True
        return self._not_found, None, False

    def _query(self) -> dict:
        return urllib.parse.parse_qs(self.req.query, keep_blank_values=True)

    # -- unauthenticated routes -------------------------------------------

    def _outage(self, user, status):
        self._json(status, {"detail": "Eventory is down"})

    async def _echo(self, user, arg):
        req = self.req
        h = hashlib.sha256()
        length = 0
        while chunk := await self._body_piece(req):
            h.update(chunk)
            length += len(chunk)
        payload = {"method": req.method, "path": req.path, "query": req.query, "headers": req.headers}
        payload.update(body_sha256=h.hexdigest(), body_length=length)
        conn = "close, X-Hop" if req.close else "keep-alive, X-Hop"
        self._respond(
            200,
            json.dumps(payload).encode("utf-8"),
            _JSON,
            headers=[
                ("X-Echo", "yes"),
                ("Set-Cookie", "upstream=1"),
                ("Connection", conn),
                ("X-Hop", "should-be-dropped"),
                ("Keep-Alive", "timeout=5"),
            ],
        )

    async def _login(self, user, arg):
        fake = self.fake
        fake._count_login_attempt()
        body = await self._read_body()
        if fake.login_delay and fake.login_delay > 0:
            await asyncio.sleep(fake.login_delay)
        fields = _parse_form(self.req.headers.get("content-type", ""), body)
        missing = [name for name in ("username", "password") if name not in fields]
        if missing:
            detail = [
                {"loc": ["body", name], "msg": "field required", "type": "value_error.missing"} for name in missing
            ]
            return self._json(422, {"detail": detail})
        token = fake._login(fields["username"], fields["password"])
        if token is None:
            return self._json(401, {"detail": "Incorrect username or password"})
        self._json(200, {"access_token": token, "token_type": "bearer"})

    async def _download(self, user, arg):
        values = self._query().get("size")
        size = DOWNLOAD_DEFAULT_SIZE
        if values:
            try:
                size = int(values[0])
            except ValueError:
                return self._json(400, {"detail": "invalid size"})
        size = max(0, min(size, DOWNLOAD_MAX_SIZE))
        await self._stream(_OCTETS, size, download_chunks(size))

    def _gzip(self, user, arg):
        self._respond(200, GZIP_BODY, _JSON, headers=[("Content-Encoding", "gzip")])

    async def _slow(self, user, arg):
        values = self._query().get("seconds")
        seconds = 2.0
        if values:
            try:
                seconds = float(values[0])
            except ValueError:
                return self._json(400, {"detail": "invalid seconds"})
        seconds = max(0.0, min(seconds, 30.0))
        await asyncio.sleep(seconds)
        self._json(200, {"slept": int(seconds) if seconds.is_integer() else seconds})

    async def _reset(self, user, arg):
        self._respond(200, b"", _OCTETS, content_length=RESET_DECLARED_LENGTH)
        if self.req.method != "HEAD":
            self.transport.write(bytes(range(250)) * 4)  # RESET_SENT_BYTES
        # Give the client a moment to receive headers + partial body before the RST.
        await asyncio.sleep(0.1)
        self._abort()

    def _redirect(self, user, arg):
        path = self.req.path
        location = {"/redirect": self.fake.url + "/jobs/list", "/redirect-away": "https://elsewhere.example/x"}
        self._respond(302, b"", None, headers=[("Location", location.get(path, "/jobs/list"))])

    def _status(self, user, code_text):
        code = _parse_int(code_text)
        if code is None or not 200 <= code <= 599:
            return self._not_found()
        if code in (204, 304):
            return self._respond(code)
        self._json(code, {"status": code})

    def _calls(self, user, arg):
        path = self._query().get("path", [""])[0]
        self._json(200, {"calls": self.fake.calls(path)})

    # -- authenticated routes ---------------------------------------------

    def _user_info(self, user, arg):
        username, info = user
        names = {key: info[key] for key in ("organizationName", "firstName", "lastName")}
        self._json(200, {**names, "username": username})

    def _logo(self, user, arg):
        status, body, content_type = self.fake.logo or (200, LOGO_BYTES, "image/png")
        self._respond(status, body, content_type)

    def _jobs(self, user, arg):
        self._respond(200, _jobs_body(user[1]["organizationName"]))

    async def _big_json(self, user, arg):
        """A JSON array of exactly `size` bytes (see `big_json_chunks`), with Content-Length."""
        values = self._query().get("size")
        size = max(2, min(int(values[0]) if values and values[0].isdigit() else 1024, DOWNLOAD_MAX_SIZE))
        await self._stream(_JSON, size, big_json_chunks(size))

    async def _held(self, user, arg):
        """HELD_FIRST, then (once `release()` is called) HELD_REST, with Content-Length."""
        await self._stream(_OCTETS, len(HELD_FIRST) + len(HELD_REST), [HELD_FIRST])
        fake = self.fake
        while not fake._released.is_set():
            await asyncio.sleep(0.01)
        if fake._held_breaks:
            self._abort()
        elif self.req.method != "HEAD":
            await self._write(HELD_REST)

    def _inventory_rentals(self, user, arg):
        self._respond(200, b"[]")

    def _broken_json(self, user, arg):
        self._respond(200, b"not json", _JSON)

    def _pack_list_details(self, user, pid):
        self._json(200, {"id": pid, "organisation": user[1]["organizationName"]})

    async def _pack_list_rental_update(self, user, pid):
        body = await self._read_body()
        try:
            parsed = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            return self._json(422, {"detail": "invalid JSON body"})
        self._json(200, {"id": pid, "updated": parsed})


def _parse_int(text):
    if not text or not text.isdigit():
        return None
    return int(text)


def _parse_form(content_type: str, body: bytes) -> dict:
    """Parse an urlencoded or multipart/form-data body into {name: str} (first value wins)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    fields: dict = {}
    if ctype == "multipart/form-data":
        header = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
        msg = BytesParser(policy=email_policy.HTTP).parsebytes(header + body)
        if not msg.is_multipart():
            return fields
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name or name in fields:
                continue
            payload = part.get_payload(decode=True) or b""
            fields[name] = payload.decode("utf-8", "replace")
        return fields
    # Default: application/x-www-form-urlencoded
    text = body.decode("utf-8", "replace")
    for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


# --- Public class ------------------------------------------------------------------------------------


class FakeEventory:
    """A real HTTP server on 127.0.0.1 that plays Eventory.

    Routes: POST /login-json; authenticated (Bearer) GET /user-info, /logo,
    /jobs/list, /big-json?size=N, /held (its first part, the rest after `release()`),
    /pack-lists/details/<id>, /inventory-rentals, /broken-json and
    PUT /pack-list-rentals/<id>; unauthenticated /echo[/...] (any method),
    GET /download?size=N, /gzip, /slow?seconds=S, /reset, /redirect,
    /redirect-away, /redirect-relative, /status/<code>, /calls?path=P ({"calls": n}).
    Anything else: 404. Every route also takes `delay_ms=N`, answering N ms late.

    `peer_ports` has each logged request's client port, so a test can tell which connection it came on.
    `outage` plays Eventory down: an HTTP status (every route but /echo answers it) or "drop"
    (every connection closed without an answer). `calls(path)` counts the requests received
    for a path; `set_password` changes a user's Eventory password. `logo`, when set, is the
    (status, body, content type) that /logo answers in place of the PNG.

    `any_user` signs in any non-empty username and password (the bench's many logins);
    `log_requests=False` keeps no request log (`requests`, `peer_ports`), only the counts.
    """

    def __init__(self, users=None, token_ttl=None, *, any_user=False, log_requests=True):
        self._lock = threading.Lock()
        src = DEFAULT_USERS if users is None else users
        self._users = {name: dict(info) for name, info in src.items()}
        self.token_ttl = token_ttl
        self.any_user = any_user
        self.log_requests = log_requests
        self._tokens: dict = {}  # token -> (username, issued monotonic time)
        self._calls: collections.Counter = collections.Counter()
        self.login_count = collections.Counter()
        self.login_attempts = 0
        self.requests: list = []
        self.peer_ports: list[int] = []  # each request's client port: which connection it came on
        self.delay = 0.0
        self.login_delay = 0.0
        self.outage: int | str | None = None
        self.logo: tuple[int, bytes, str] | None = None
        self._released = threading.Event()
        self._released.set()
        self._held_breaks = False
        self.url = None
        self.port = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connections: set = set()

    # -- lifecycle --------------------------------------------------------

    def start(self, port: int = 0) -> FakeEventory:
        if self._loop is not None:
            return self
        sock = socket.create_server(("127.0.0.1", port), backlog=1024)
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        loop = asyncio.new_event_loop()
        listening = threading.Event()

        def serve():
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    loop.create_server(lambda: _Connection(self), sock=sock, backlog=1024)
                )
                listening.set()
                loop.run_forever()
            finally:
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
                sock.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name=f"FakeEventory-{self.port}", daemon=True)
        self._thread.start()
        listening.wait(10)
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        self._loop = self._thread = None

        def halt():
            self._server.close()
            for connection in list(self._connections):
                connection.transport.abort()  # unblocks keep-alive readers and stalled writers
            loop.stop()

        loop.call_soon_threadsafe(halt)
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> FakeEventory:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- users / tokens ---------------------------------------------------

    def add_user(self, username, password, organisation, first="F", last="L") -> None:
        with self._lock:
            self._users[username] = _user(password, organisation, first, last)

    def issue_token(self, username) -> str:
        with self._lock:
            if username not in self._users:
                raise KeyError(username)
            token = secrets.token_urlsafe(32)
            self._tokens[token] = (username, time.monotonic())
            return token

    def set_password(self, username, password) -> None:
        with self._lock:
            self._users[username]["password"] = password

    def calls(self, path) -> int:
        """How many requests for `path` (without the query) were received since the last reset."""
        with self._lock:
            return self._calls[path]

    def hold(self) -> None:
        """/held answers its first part and waits for `release()`."""
        self._held_breaks = False
        self._released.clear()

    def release(self, *, broken: bool = False) -> None:
        """/held goes on: with the rest of its answer, or (`broken`) by resetting the connection."""
        self._held_breaks = broken
        self._released.set()

    def expire_all_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def reset(self) -> None:
        """Clear the login counters and the request log (users and tokens are kept)."""
        with self._lock:
            self.login_count.clear()
            self.login_attempts = 0
            self._calls.clear()
            del self.requests[:]
            del self.peer_ports[:]

    # -- internals used by the connections --------------------------------

    def _log_request(self, req, peer_port) -> None:
        with self._lock:
            self._calls[req.path] += 1
            if self.log_requests:
                self.requests.append((req.method, req.target, req.headers))
                self.peer_ports.append(peer_port)

    def _count_login_attempt(self) -> None:
        with self._lock:
            self.login_attempts += 1

    def _login(self, username, password):
        with self._lock:
            info = self._users.get(username)
            if self.any_user and username and password:
                if info is None:
                    self._users[username] = _user(password, f"Org of {username}", "Bench", username)
            elif info is None or not secrets.compare_digest(info["password"].encode("utf-8"), password.encode("utf-8")):
                return None
            token = secrets.token_urlsafe(32)
            self._tokens[token] = (username, time.monotonic())
            self.login_count[username] += 1
            return token

    def _user_for_auth_header(self, value):
        scheme, _, token = (value or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        with self._lock:
            username, issued = self._tokens.get(token, (None, 0.0))
            info = self._users.get(username)
            if info is None or (self.token_ttl is not None and time.monotonic() - issued >= self.token_ttl):
                return None
            return username, dict(info)


def main(argv=None) -> None:
    """Serve as a process: `PORT <n>` on stdout once listening, until killed or --max-seconds."""
    parser = argparse.ArgumentParser(description="A fake Eventory API server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="0 (the default): a free one")
    parser.add_argument("--any-user", action="store_true", help="sign in any non-empty username and password")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop after this long (default 900)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # No request log: a bench's millions of requests would make it grow without end.
    fake = FakeEventory(any_user=args.any_user, log_requests=False).start(args.port)
    print(f"PORT {fake.port}", flush=True)
    if not stop.wait(args.max_seconds):
        print("fake Eventory: --max-seconds reached, stopping", file=sys.stderr)
    fake.stop()


if __name__ == "__main__":
    main()
