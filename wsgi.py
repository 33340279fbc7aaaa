"""`flask --app wsgi run` for development; `python wsgi.py` (or `waitress-serve wsgi:app`) in production."""

from dotenv import load_dotenv

# flask's CLI reads .env by itself; waitress does not.
load_dotenv()

from eventory_backend import create_app  # noqa: E402
from eventory_backend.observability.logging import log_everything_as_json  # noqa: E402
from eventory_backend.web import server  # noqa: E402

app = create_app()


def serve() -> None:
    log_everything_as_json()
    host, port = app.config["HOST"], app.config["PORT"]
    print(f"Eventory backend on http://{host}:{port} (docs at /docs)", flush=True)
    server.serve(app, host, port)


if __name__ == "__main__":
    serve()
