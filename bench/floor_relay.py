"""The stack's floor: the least a Flask + requests relay under waitress can do, for bench/run.py to
measure beside the backend in the same run and against the same fake Eventory.

    python bench/floor_relay.py --eventory http://127.0.0.1:PORT [--port 0] [--threads 64]

`GET|HEAD|POST|PUT|PATCH|DELETE /eventory/<path>` goes to the same path below --eventory through
one pooled `requests.Session`, the client's `X-Eventory-Authorization` sent on as `Authorization`,
the answer streamed back with `raw.read1` (as the backend does). No accounts, no token check, no
limits, no logging, no header rules: everything the backend adds on top of this is what its
figures are divided by. It prints `PORT <n>` once it listens.
"""

from __future__ import annotations

import argparse

import requests
import waitress
from flask import Flask, Response, request
from requests.adapters import HTTPAdapter

CHUNK = 64 * 1024
PASSED_BACK = ("content-type", "content-length", "content-encoding", "etag")


def create_app(eventory: str, threads: int) -> Flask:
    app = Flask(__name__)
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", HTTPAdapter(pool_maxsize=max(10, threads), max_retries=0))
    base = eventory.rstrip("/")

    @app.route("/eventory/<path:path>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
    def relay(path: str):
        headers = {"Accept": request.headers.get("Accept", "*/*")}
        token = request.headers.get("X-Eventory-Authorization")
        if token:
            headers["Authorization"] = token
        query = request.query_string.decode("latin-1")
        answer = session.request(
            request.method,
            f"{base}/{path}" + (f"?{query}" if query else ""),
            headers=headers,
            data=request.get_data() or None,
            stream=True,
            allow_redirects=False,
            timeout=(5, 60),
        )

        def body():
            try:
                while chunk := answer.raw.read1(CHUNK, decode_content=False):
                    yield chunk
            finally:
                answer.close()

        kept = [(name, value) for name, value in answer.raw.headers.items() if name.lower() in PASSED_BACK]
        return Response(body(), status=answer.status_code, headers=kept, direct_passthrough=True)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eventory", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args()
    app = create_app(args.eventory, args.threads)
    server = waitress.create_server(app, host="127.0.0.1", port=args.port, threads=args.threads)
    print(f"PORT {server.effective_port}", flush=True)
    server.run()


if __name__ == "__main__":
    main()
