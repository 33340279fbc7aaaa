"""A fake Eventory API server for tests (standard library only).

Runs a real HTTP/1.1 server on 127.0.0.1 (random port) in a daemon thread so
the backend proxy can be exercised end to end::

    with FakeEventory() as fake:
        requests.get(fake.url + "/echo")

See the ``FakeEventory`` docstring for the routes.
"""

from __future__ import annotations

import collections
import functools
import gzip
import hashlib
import json
import random
import secrets
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
from email import policy as email_policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = [
    "FakeEventory",
    "DEFAULT_USERS",
    "DOWNLOAD_DEFAULT_SIZE",
    "DOWNLOAD_MAX_SIZE",
    "DOWNLOAD_CHUNK_SIZE",
    "download_chunks",
    "download_sha256",
    "GZIP_PLAIN",
    "GZIP_BODY",
    "LOGO_BYTES",
    "HELD_FIRST",
    "HELD_REST",
    "RESET_DECLARED_LENGTH",
    "RESET_SENT_BYTES",
]

DEFAULT_USERS = {
    "anna@example.com": {
        "password": "eventory-pass-1",
        "organizationName": "Org One",
        "firstName": "Anna",
        "lastName": "Andersson",
    }
}

# --------------------------------------------------------------------------
# Deterministic payloads
# --------------------------------------------------------------------------

DOWNLOAD_CHUNK_SIZE = 64 * 1024
DOWNLOAD_DEFAULT_SIZE = 10 * 1024 * 1024
DOWNLOAD_MAX_SIZE = 300 * 1024 * 1024

_BASE_BLOCK = random.Random(1234).randbytes(DOWNLOAD_CHUNK_SIZE)


def _download_block(index: int) -> bytes:
    """Block ``index`` (64 KiB): the base block rotated, with the index mixed in."""
    r = (index * 7919) % DOWNLOAD_CHUNK_SIZE
    rotated = _BASE_BLOCK[r:] + _BASE_BLOCK[:r]
    return index.to_bytes(8, "little") + rotated[8:]


def download_chunks(size: int):
    """Yield the ``size`` bytes served by ``GET /download?size=size``, in chunks of at most 64 KiB."""
    size = max(0, int(size))
    index = 0
    remaining = size
    while remaining > 0:
        block = _download_block(index)
        if remaining < len(block):
            block = block[:remaining]
        yield block
        remaining -= len(block)
        index += 1


@functools.lru_cache(maxsize=32)
def download_sha256(size: int) -> str:
    """Hex SHA-256 of the body of ``GET /download?size=size``."""
    h = hashlib.sha256()
    for chunk in download_chunks(size):
        h.update(chunk)
    return h.hexdigest()


def _make_gzip_plain() -> bytes:
    items = [
        {
            "id": i,
            "name": f"Item {i}",
            "category": ["lighting", "sound", "stage", "video", "power"][i % 5],
            "quantity": (i * 37) % 101,
            "description": f"Deterministic test item number {i} for gzip pass-through.",
        }
        for i in range(160)
    ]
    return json.dumps({"items": items}, separators=(",", ":")).encode("utf-8")


GZIP_PLAIN: bytes = _make_gzip_plain()
GZIP_BODY: bytes = gzip.compress(GZIP_PLAIN, compresslevel=9, mtime=0)

LOGO_BYTES: bytes = b"\x89PNG\r\n\x1a\n" + (bytes(range(256)) * 16)[:4000]

HELD_FIRST: bytes = b"first part of a held answer;" * 100
HELD_REST: bytes = b"the rest, once released." * 100

RESET_DECLARED_LENGTH = 100_000
RESET_SENT_BYTES = 1000


# --------------------------------------------------------------------------
# Server plumbing
# --------------------------------------------------------------------------


class _BadRequest(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, fake: FakeEventory):
        self.fake = fake
        self._conn_lock = threading.Lock()
        self._active = set()
        self._handler_threads = []
        self._stopping = False
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request, client_address):
        # ThreadingMixIn does not track daemon threads; track them so stop() can join them.
        t = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"FakeEventory-{self.server_port}-handler",
            daemon=True,
        )
        with self._conn_lock:
            self._handler_threads = [x for x in self._handler_threads if x.is_alive()]
            self._handler_threads.append(t)
        t.start()

    def join_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._conn_lock:
            threads = list(self._handler_threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def server_bind(self):
        # Skip HTTPServer.server_bind's socket.getfqdn() (can be slow on some hosts).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    def register(self, sock) -> None:
        with self._conn_lock:
            self._active.add(sock)
            stopping = self._stopping
        if stopping:
            _shutdown_quietly(sock)

    def unregister(self, sock) -> None:
        with self._conn_lock:
            self._active.discard(sock)

    def abort_connections(self) -> None:
        with self._conn_lock:
            self._stopping = True
            socks = list(self._active)
        for sock in socks:
            _shutdown_quietly(sock)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ValueError)):
            return  # client went away / socket aborted: not interesting
        super().handle_error(request, client_address)


def _shutdown_quietly(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


_JSON = "application/json"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeEventory/1.0"
    disable_nagle_algorithm = True
    timeout = 120  # backstop for idle keep-alive connections

    # -- plumbing ---------------------------------------------------------

    def setup(self):
        super().setup()
        self.server.register(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.unregister(self.connection)

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # noqa: A002 - silence stderr logging
        pass

    def __getattr__(self, name):
        # Any method (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, ...) goes to _dispatch.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    @property
    def fake(self) -> FakeEventory:
        return self.server.fake

    def _header_dict(self) -> dict:
        out: dict = {}
        for key, value in self.headers.items():
            k = key.lower()
            out[k] = f"{out[k]}, {value}" if k in out else value
        return out

    # -- request body -----------------------------------------------------

    def _iter_body(self):
        """Return an iterator over the request body (Content-Length or chunked)."""
        if self._body_consumed:
            return iter(())
        self._body_consumed = True
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return self._iter_chunked()
        cl = self.headers.get("Content-Length")
        if cl is None or cl.strip() == "":
            return iter(())
        try:
            length = int(cl.strip())
        except ValueError:
            raise _BadRequest("invalid Content-Length") from None
        if length < 0:
            raise _BadRequest("invalid Content-Length")
        return self._iter_length(length)

    def _iter_length(self, length):
        remaining = length
        while remaining > 0:
            data = self.rfile.read(min(remaining, 65536))
            if not data:
                raise ConnectionError("client closed during body")
            remaining -= len(data)
            yield data

    def _iter_chunked(self):
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed during chunked body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("invalid chunk size") from None
            if size < 0:
                raise _BadRequest("invalid chunk size")
            if size == 0:
                while True:  # trailers, until the empty line
                    trailer = self.rfile.readline(65537)
                    if trailer in (b"\r\n", b"\n", b""):
                        return
            remaining = size
            while remaining > 0:
                data = self.rfile.read(min(remaining, 65536))
                if not data:
                    raise ConnectionError("client closed during chunk")
                remaining -= len(data)
                yield data
            self.rfile.readline(65537)  # CRLF after the chunk data

    def _read_body(self) -> bytes:
        return b"".join(self._iter_body())

    # -- responses --------------------------------------------------------

    def _respond(self, status, body=b"", content_type=_JSON, headers=(), content_length=None):
        self._response_started = True
        self.send_response(status)
        no_body = status in (204, 304) or 100 <= status < 200
        if not no_body:
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body) if content_length is None else content_length))
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            if not any(n.lower() == "connection" for n, _ in headers):
                self.send_header("Connection", "close")
        self.end_headers()
        if body and not no_body and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj, headers=()):
        self._respond(status, json.dumps(obj).encode("utf-8"), _JSON, headers)

    def _not_found(self):
        self._json(404, {"detail": "Not Found"})

    # -- dispatch ---------------------------------------------------------

    def _dispatch(self):
        self._body_consumed = False
        self._response_started = False
        self._aborted = False
        raw = self.path
        path, sep, query = raw.partition("?")
        self._raw_path = path
        self._raw_query = query if sep else ""
        self.fake._log_request(self.command, raw, self._header_dict(), self.client_address[1])
        try:
            outage = self.fake.outage
            if outage == "drop":
                self._aborted = True
                self.close_connection = True
                return
            if outage is not None and path != "/echo" and not path.startswith("/echo/"):
                return self._json(outage, {"detail": "Eventory is down"})
            self._route(path)
            if not self._aborted and not self._body_consumed:
                for _ in self._iter_body():  # keep the connection in sync
                    pass
        except _BadRequest as exc:
            self.close_connection = True
            if not self._response_started:
                try:
                    self._json(400, {"detail": str(exc)})
                except OSError:
                    pass
        except (OSError, ValueError):
            # Client vanished, connection aborted on purpose, or server stopping.
            self.close_connection = True
        except Exception as exc:  # a bug in the fake: answer 500 rather than hang
            self.close_connection = True
            if not self._response_started:
                try:
                    self._json(500, {"detail": f"fake error: {exc!r}"})
                except OSError:
                    pass

    def _route(self, path):
        method = self.command
        is_get = method in ("GET", "HEAD")

        if path == "/echo" or path.startswith("/echo/"):
            return self._echo()
        if path == "/login-json":
            if method == "POST":
                return self._login()
            return self._not_found()
        if is_get and path == "/download":
            return self._download()
        if is_get and path == "/gzip":
            return self._respond(200, GZIP_BODY, _JSON, headers=[("Content-Encoding", "gzip")])
        if is_get and path == "/slow":
            return self._slow()
        if is_get and path == "/reset":
            return self._reset()
        if is_get and path == "/redirect":
            return self._redirect(self.fake.url + "/jobs/list")
        if is_get and path == "/redirect-away":
            return self._redirect("https://elsewhere.example/x")
        if is_get and path == "/redirect-relative":
            return self._redirect("/jobs/list")
        if is_get and path.startswith("/status/"):
            return self._status(path[len("/status/") :])

        # Authenticated API routes.
        handler = None
        arg = None
        if is_get and path == "/user-info":
            handler = self._user_info
        elif is_get and path == "/logo":
            handler = self._logo
        elif is_get and path == "/jobs/list":
            handler = self._jobs
        elif is_get and path == "/big-json":
            handler = self._big_json
        elif is_get and path == "/inventory-rentals":
            handler = self._inventory_rentals
        elif is_get and path == "/broken-json":
            handler = self._broken_json
        elif is_get and path == "/held":
            handler = self._held
        elif is_get and path.startswith("/pack-lists/details/"):
            arg = _parse_int(path[len("/pack-lists/details/") :])
            if arg is not None:
                handler = self._pack_list_details
        elif method == "PUT" and path.startswith("/pack-list-rentals/"):
            arg = _parse_int(path[len("/pack-list-rentals/") :])
            if arg is not None:
                handler = self._pack_list_rental_update
        if handler is None:
            return self._not_found()

        delay = self.fake.delay
        if delay and delay > 0:
            self.fake._sleep(delay)
        user = self.fake._user_for_auth_header(self.headers.get("Authorization"))
        if user is None:
            return self._json(
                401,
                {"detail": "Could not validate credentials"},
                headers=[("WWW-Authenticate", "Bearer")],
            )
        username, info = user
        if arg is None:
            return handler(username, info)
        return handler(username, info, arg)

    # -- unauthenticated routes -------------------------------------------

    def _echo(self):
        h = hashlib.sha256()
        length = 0
        for chunk in self._iter_body():
            h.update(chunk)
            length += len(chunk)
        payload = {
            "method": self.command,
            "path": self._raw_path,
            "query": self._raw_query,
            "headers": self._header_dict(),
            "body_sha256": h.hexdigest(),
            "body_length": length,
        }
        conn = "close, X-Hop" if self.close_connection else "keep-alive, X-Hop"
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

    def _login(self):
        self.fake._count_login_attempt()
        body = self._read_body()
        delay = self.fake.login_delay
        if delay and delay > 0:
            self.fake._sleep(delay)
        fields = _parse_form(self.headers.get("Content-Type") or "", body)
        missing = [name for name in ("username", "password") if name not in fields]
        if missing:
            return self._json(
                422,
                {
                    "detail": [
                        {"loc": ["body", name], "msg": "field required", "type": "value_error.missing"}
                        for name in missing
                    ]
                },
            )
        token = self.fake._login(fields["username"], fields["password"])
        if token is None:
            return self._json(401, {"detail": "Incorrect username or password"})
        return self._json(200, {"access_token": token, "token_type": "bearer"})

    def _query(self) -> dict:
        return urllib.parse.parse_qs(self._raw_query, keep_blank_values=True)

    def _download(self):
        values = self._query().get("size")
        size = DOWNLOAD_DEFAULT_SIZE
        if values:
            try:
                size = int(values[0])
            except ValueError:
                return self._json(400, {"detail": "invalid size"})
        size = max(0, min(size, DOWNLOAD_MAX_SIZE))
        self._respond(200, b"", "application/octet-stream", content_length=size)
        if self.command == "HEAD":
            return
        for chunk in download_chunks(size):
            self.wfile.write(chunk)

    def _slow(self):
        values = self._query().get("seconds")
        seconds = 2.0
        if values:
            try:
                seconds = float(values[0])
            except ValueError:
                return self._json(400, {"detail": "invalid seconds"})
        seconds = max(0.0, min(seconds, 30.0))
        self.fake._sleep(seconds)
        slept = int(seconds) if seconds.is_integer() else seconds
        self._json(200, {"slept": slept})

    def _reset(self):
        self._respond(200, b"", "application/octet-stream", content_length=RESET_DECLARED_LENGTH)
        if self.command != "HEAD":
            self.wfile.write(bytes(range(250)) * 4)  # RESET_SENT_BYTES
        self.wfile.flush()
        # Give the client a moment to receive headers + partial body before the RST.
        self.fake._sleep(0.1)
        self._abort()

    def _abort(self):
        """Reset the connection (RST), mid-answer."""
        self._aborted = True
        self.close_connection = True
        sock = self.connection
        fmt = "HH" if sys.platform == "win32" else "ii"
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack(fmt, 1, 0))
        except OSError:
            pass
        # Close the makefile() reader too, otherwise socket.close() only drops a reference.
        try:
            self.rfile.close()
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    def _redirect(self, location):
        self._respond(302, b"", None, headers=[("Location", location)])

    def _status(self, code_text):
        code = _parse_int(code_text)
        if code is None or not 200 <= code <= 599:
            return self._not_found()
        if code in (204, 304):
            return self._respond(code)
        self._json(code, {"status": code})

    # -- authenticated routes ---------------------------------------------

    def _user_info(self, username, info):
        self._json(
            200,
            {
                "organizationName": info["organizationName"],
                "firstName": info["firstName"],
                "lastName": info["lastName"],
                "username": username,
            },
        )

    def _logo(self, username, info):
        status, body, content_type = self.fake.logo or (200, LOGO_BYTES, "image/png")
        self._respond(status, body, content_type)

    def _jobs(self, username, info):
        org = info["organizationName"]
        self._json(200, [{"id": i, "name": f"Job {i}", "organisation": org} for i in (1, 2, 3)])

    def _big_json(self, username, info):
        """A JSON array of exactly `size` bytes (with Content-Length), written in pieces."""
        values = self._query().get("size")
        size = max(3, min(int(values[0]) if values and values[0].isdigit() else 1024, DOWNLOAD_MAX_SIZE))
        self._respond(200, b"", _JSON, content_length=size)
        item = b'"' + b"x" * 62 + b'",'  # 65 bytes per element; a final 0 closes the list
        count, rest = divmod(size - 3, len(item))
        self.wfile.write(b"[")
        while count:
            take = min(count, 1000)
            self.wfile.write(item * take)
            count -= take
        self.wfile.write(b"0" + b" " * rest + b"]")

    def _held(self, username, info):
        """HELD_FIRST, then (once `release()` is called) HELD_REST, with Content-Length."""
        self._respond(200, b"", "application/octet-stream", content_length=len(HELD_FIRST) + len(HELD_REST))
        self.wfile.write(HELD_FIRST)
        self.wfile.flush()
        if self.fake._wait_for_release():
            self.wfile.write(HELD_REST)
        else:
            self._abort()

    def _inventory_rentals(self, username, info):
        self._json(200, [])

    def _broken_json(self, username, info):
        self._respond(200, b"not json", _JSON)

    def _pack_list_details(self, username, info, pid):
        self._json(200, {"id": pid, "organisation": info["organizationName"]})

    def _pack_list_rental_update(self, username, info, pid):
        body = self._read_body()
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


# --------------------------------------------------------------------------
# Public class
# --------------------------------------------------------------------------


class FakeEventory:
    """A real HTTP server on 127.0.0.1 that plays Eventory.

    Routes: POST /login-json; authenticated (Bearer) GET /user-info, /logo,
    /jobs/list, /big-json?size=N, /held (its first part, the rest after `release()`),
    /pack-lists/details/<id>, /inventory-rentals, /broken-json and
    PUT /pack-list-rentals/<id>; unauthenticated /echo[/...] (any method),
    GET /download?size=N, /gzip, /slow?seconds=S, /reset, /redirect,
    /redirect-away, /redirect-relative, /status/<code>. Anything else: 404.

    `peer_ports` has each logged request's client port, so a test can tell which connection it came on.
    `outage` plays Eventory down: an HTTP status (every route but /echo answers it) or "drop"
    (every connection closed without an answer). `calls(path)` counts the requests received
    for a path; `set_password` changes a user's Eventory password. `logo`, when set, is the
    (status, body, content type) that /logo answers in place of the PNG.
    """

    def __init__(self, users=None, token_ttl=None):
        self._lock = threading.Lock()
        src = DEFAULT_USERS if users is None else users
        self._users = {name: dict(info) for name, info in src.items()}
        self.token_ttl = token_ttl
        self._tokens: dict = {}  # token -> (username, issued monotonic time)
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
        self._server = None
        self._thread = None
        self._stop_event = threading.Event()

    # -- lifecycle --------------------------------------------------------

    def start(self) -> FakeEventory:
        if self._server is not None:
            return self
        self._stop_event = threading.Event()
        server = _Server(self)
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeEventory-{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = None
        self._thread = None
        self._stop_event.set()  # wake handlers sleeping in /slow, delay, ...
        server.shutdown()  # stop accepting
        server.abort_connections()  # unblock keep-alive readers / blocked writers
        server.server_close()  # close the listening socket
        server.join_handlers(5)
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> FakeEventory:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- users / tokens ---------------------------------------------------

    def add_user(self, username, password, organisation, first="F", last="L") -> None:
        with self._lock:
            self._users[username] = {
                "password": password,
                "organizationName": organisation,
                "firstName": first,
                "lastName": last,
            }

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
            return sum(1 for _method, target, _headers in self.requests if target.partition("?")[0] == path)

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
            del self.requests[:]
            del self.peer_ports[:]

    # -- internals used by the handler ------------------------------------

    def _log_request(self, method, path, headers, peer_port) -> None:
        with self._lock:
            self.requests.append((method, path, headers))
            self.peer_ports.append(peer_port)

    def _count_login_attempt(self) -> None:
        with self._lock:
            self.login_attempts += 1

    def _login(self, username, password):
        with self._lock:
            info = self._users.get(username)
            if info is None or not secrets.compare_digest(info["password"].encode("utf-8"), password.encode("utf-8")):
                return None
            token = secrets.token_urlsafe(32)
            self._tokens[token] = (username, time.monotonic())
            self.login_count[username] += 1
            return token

    def _user_for_auth_header(self, value):
        if not value:
            return None
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None:
                return None
            username, issued = entry
            ttl = self.token_ttl
            if ttl is not None and time.monotonic() - issued >= ttl:
                return None
            info = self._users.get(username)
            if info is None:
                return None
            return username, dict(info)

    def _wait_for_release(self) -> bool:
        """Whether /held may finish its answer (False: it breaks off)."""
        while not self._released.wait(0.05):
            if self._stop_event.is_set():
                raise ConnectionAbortedError("FakeEventory stopping")
        return not self._held_breaks

    def _sleep(self, seconds) -> None:
        if self._stop_event.wait(seconds):
            # stop() was called: abandon the request (the connection is being torn down).
            raise ConnectionAbortedError("FakeEventory stopping")
