"""Instructions per request, counted by callgrind, for one or more checkouts of the backend:

    python bench/instructions.py                                  # the checkout this file is in
    python bench/instructions.py --requests 200 ../old-commit .   # compare two checkouts

A CHECKOUT is a directory holding this project's wsgi.py (for instance an older commit checked out
with `git worktree add`). For each checkout and each kind of request it starts the fake Eventory
(tests/fake_eventory.py) and that checkout's backend as bench/run.py does (`python wsgi.py`, same
environment), but under `valgrind --tool=callgrind --fair-sched=yes` with PYTHONHASHSEED=0;
sets up an account and 10 logins through the API (bench/run.py's `set_up`); sends 300 warm-up
requests over 4 keep-alive connections; zeroes the counters (`callgrind_control --zero`); sends
exactly N more requests, one at a time, round-robin over the same 4 connections; dumps the counters
(`callgrind_control --dump`) and divides the dump's Ir summary (user-space instructions executed by
every thread of the process since the zeroing) by N. Each kind gets a fresh backend. Unlike CPU
time on a shared machine, the counts repeat from run to run, so they show what a change costs or
saves even when the machine is busy.

Linux only; needs valgrind (apt-get install -y valgrind). About 5 minutes per checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run  # noqa: E402  (bench/run.py: the fake, the set-up and the one-off calls are reused from it)

# Enough for each of waitress's 64 threads to have served a few requests: what a thread sets up
# the first time (its own SQLite connection, database/driver_queries.py) is paid once, not per request.
WARM_UP = 300
CONNECTIONS = 4
START_SECONDS = 300  # the most a backend may take to answer under callgrind (it runs some 50x slower)
MEASURE_SECONDS = 900  # the most one measurement (start, set-up, warm-up, count) may take in all
CALL_TIMEOUT = 120  # seconds, for any one HTTP request or callgrind_control call
# Without it, which thread valgrind runs next is the kernel's choice, and waitress's main loop, which
# polls while a task has written less than send_bytes and not finished, runs a different number of
# times per request from one run to the next (GET /auth/me gave 3.2 M to 5.1 M instructions). With
# it (threads take turns in a fixed order) the main loop's count repeats.
VALGRIND_OPTIONS = ["--fair-sched=yes"]
SETTLE_SECONDS = 1.0  # pause before zeroing and before dumping, so the previous request's tail is done


@dataclass(frozen=True)
class Kind:
    name: str
    path: str
    headers: str  # which headers of the set-up: "relay", "brokered" or "backend"


KINDS = (
    Kind("relay: GET /eventory/jobs/list, X-Eventory-Authorization", "/eventory/jobs/list", "relay"),
    Kind("brokered: GET /eventory/jobs/list, X-Eventory-Login", "/eventory/jobs/list", "brokered"),
    Kind("GET /auth/me", "/auth/me", "backend"),
    Kind(f"GET /logins ({run.LOGINS} logins)", "/logins", "backend"),
)


def headers_for(kind: Kind, s: run.Setup) -> dict[str, str]:
    if kind.headers == "relay":
        return s.relay_headers
    if kind.headers == "brokered":
        return {**s.backend_auth, "X-Eventory-Login": str(s.login_ids[0])}
    return s.backend_auth


# --- the checkout ---------------------------------------------------------------------------


def git(checkout: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=False, timeout=30
    )
    return result.stdout.rstrip() if result.returncode == 0 else ""  # porcelain lines start with a space


def describe(checkout: Path) -> str:
    """The commit, and which top-level folders or files (bench/ aside) differ from it."""
    commit = git(checkout, "rev-parse", "--short", "HEAD") or "no git commit"
    changed = git(checkout, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench")
    tops = sorted({line[3:].split("/", 1)[0] for line in changed.splitlines() if len(line) > 3})
    return commit + (f" + uncommitted changes in {', '.join(tops)}" if tops else "")


def fingerprint(checkout: Path) -> str:
    """SHA-256 of the code measured: the checkout's top-level and package Python files."""
    digest = hashlib.sha256()
    for path in sorted([*checkout.glob("*.py"), *(checkout / "eventory_backend").rglob("*.py")]):
        digest.update(f"{path.relative_to(checkout)}\0".encode())
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def check_checkout(checkout: Path) -> None:
    """A wsgi.py, and `eventory_backend` imported from the checkout itself (not from an install)."""
    if not (checkout / "wsgi.py").is_file():
        sys.exit(f"{checkout}: no wsgi.py here; give a checkout of this project")
    found = subprocess.run(
        [sys.executable, "-c", "import eventory_backend; print(eventory_backend.__file__)"],
        cwd=checkout,
        env={**os.environ, "PYTHON_DOTENV_DISABLED": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    where = Path(found.stdout.strip() or ".").resolve()
    if found.returncode != 0 or not where.is_relative_to(checkout):
        sys.exit(f"{checkout}: eventory_backend is not imported from the checkout: {found.stdout}{found.stderr}")


# --- the backend under callgrind ------------------------------------------------------------


class Callgrind(run.Server):
    """The backend as `valgrind --tool=callgrind python wsgi.py`; Popen's pid is valgrind's, which
    is the program's (valgrind runs it in its own process)."""

    def __init__(self, proc: subprocess.Popen, url: str, log: Path, workdir: Path):
        super().__init__("backend under callgrind", proc, url, log)
        self.workdir = workdir
        self.prefix = f"--vgdb-prefix={workdir / 'vgdb'}"  # ours alone, whatever else runs callgrind

    def control(self, *args: str) -> str:
        result = subprocess.run(
            ["callgrind_control", self.prefix, *args, str(self.pid)],
            capture_output=True,
            text=True,
            check=False,
            timeout=CALL_TIMEOUT,
        )
        if result.returncode != 0 or "Error" in result.stdout:
            raise RuntimeError(f"callgrind_control {' '.join(args)}: {result.stdout}{result.stderr}")
        return result.stdout

    def dumps(self) -> set[Path]:
        return set(self.workdir.glob("callgrind.out.*"))

    def count(self) -> int:
        """Dump the counters (which zeroes them) and return the Ir counted since they were zeroed."""
        before = self.dumps()
        self.control("--dump=counted")
        deadline = time.monotonic() + CALL_TIMEOUT
        while time.monotonic() < deadline:
            for dump in self.dumps() - before:
                text = dump.read_text(errors="replace")
                events = re.search(r"^events: (.*)$", text, re.MULTILINE)
                # `summary:` is every event since the counters were zeroed; `totals:` is not (it
                # also holds costs of calls still in progress, such as the server's idle loop).
                total = re.search(r"^summary: (.*)$", text, re.MULTILINE)
                if events and total:
                    return int(total.group(1).split()[events.group(1).split().index("Ir")])
            time.sleep(0.2)
        raise RuntimeError("callgrind wrote no dump")


def start_backend(
    checkout: Path, workdir: Path, eventory_url: str, hash_seed: str, program: list[str] | None = None
) -> Callgrind:
    """The checkout's `python wsgi.py` under callgrind, or `program` (with `{port}` in it) instead."""
    port = run.free_port()
    env = run.backend_env(workdir, eventory_url, port)
    if hash_seed != "random":
        env["PYTHONHASHSEED"] = hash_seed
    log = workdir / "backend.log"
    command = [
        "valgrind",
        "--tool=callgrind",
        *VALGRIND_OPTIONS,
        f"--callgrind-out-file={workdir / 'callgrind.out'}",
        f"--vgdb-prefix={workdir / 'vgdb'}",
        sys.executable,
        *([part.format(port=port) for part in program] if program else ["wsgi.py"]),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=checkout,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Callgrind(proc, f"http://127.0.0.1:{port}", log, workdir)
    # Both answer 401 once up: the backend without its token, the floor relaying the fake's.
    probe = "/eventory/jobs/list" if program else "/auth/me"
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and server.alive():
        with contextlib.suppress(OSError):
            if run.call(server.url, "GET", probe, timeout=CALL_TIMEOUT).status == 401:
                return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"the backend did not start under callgrind; its log:\n{log.read_text()[-3000:]}")


# --- requests -------------------------------------------------------------------------------


@contextlib.contextmanager
def connections(url: str) -> Iterator[list[http.client.HTTPConnection]]:
    port = int(url.rsplit(":", 1)[1])
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=CALL_TIMEOUT) for _ in range(CONNECTIONS)]
    try:
        for conn in conns:
            conn.connect()
        yield conns
    finally:
        for conn in conns:
            conn.close()


def send(conns: list[http.client.HTTPConnection], path: str, headers: dict[str, str], count: int) -> None:
    """`count` GETs, one at a time, round-robin over the open connections; each must answer 200
    and keep its connection open (a reconnection would be counted too)."""
    for number in range(count):
        conn = conns[number % len(conns)]
        if conn.sock is None:
            raise RuntimeError(f"the backend closed a keep-alive connection before request {number + 1}")
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: status {response.status}: {body[:300]!r}")


@contextlib.contextmanager
def watchdog(servers: list[run.Server], seconds: float) -> Iterator[None]:
    """Kill the servers if the measurement outlives `seconds`; the blocked call then fails."""

    def expire() -> None:
        print(f"  measurement over {seconds:.0f} s: stopping its servers", file=sys.stderr, flush=True)
        for server in servers:
            with contextlib.suppress(OSError):
                server.proc.kill()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


FLOOR_KIND = Kind("floor: GET /eventory/jobs/list through bench/floor_relay.py", "/eventory/jobs/list", "floor")
FLOOR_PROGRAM = [str(BENCH / "floor_relay.py"), "--eventory", "{eventory}", "--port", "{port}"]


def measure(checkout: Path, kind: Kind, requests: int, hash_seed: str, keep: bool) -> float:
    """Instructions per request of one kind, on a fresh backend of `checkout` (or the floor)."""
    workdir = Path(tempfile.mkdtemp(prefix="eventory-instructions-"))
    servers: list[run.Server] = []
    try:
        with watchdog(servers, MEASURE_SECONDS):
            fake = run.start_fake(max_seconds=MEASURE_SECONDS + 60)
            servers.append(fake)
            if kind is FLOOR_KIND:
                program = [part.replace("{eventory}", fake.url) for part in FLOOR_PROGRAM]
                backend = start_backend(checkout, workdir, fake.url, hash_seed, program)
                servers.append(backend)
                token = run.call_form(fake.url, "/login-json", {"username": "floor@example.com", "password": "x"})
                headers = {"X-Eventory-Authorization": f"Bearer {token.json()['access_token']}"}
            else:
                backend = start_backend(checkout, workdir, fake.url, hash_seed)
                servers.append(backend)
                headers = headers_for(kind, run.set_up(backend, fake))
            with connections(backend.url) as conns:
                send(conns, kind.path, headers, WARM_UP)
                time.sleep(SETTLE_SECONDS)
                backend.control("--zero")
                send(conns, kind.path, headers, requests)
                time.sleep(SETTLE_SECONDS)
                total = backend.count()
            if not backend.alive():
                raise RuntimeError("the backend died during the measurement")
        return total / requests
    except Exception:
        for server in servers:
            if isinstance(server, Callgrind) and server.log:
                print(f"  backend log (last lines):\n{server.log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
        raise
    finally:
        for server in reversed(servers):
            server.stop()
        if keep:
            print(f"  kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --- output ---------------------------------------------------------------------------------


def machine() -> str:
    model = run.cpu_model()
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=False, timeout=30)
    return (
        f"machine: nproc {len(os.sched_getaffinity(0))}, CPU {model}, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {valgrind.stdout.strip()}"
    )


def table(labels: list[str], counts: dict[str, list[tuple[float, bool]]]) -> str:
    """One column per checkout, then each later checkout's ratio to the first; a figure whose
    checkout's code changed while it was measured is marked with *."""
    header = ["instructions per request (Ir)", *labels]
    header += [f"({i + 1}) / (1)" for i in range(1, len(labels))]
    rows = []
    for name, cells in counts.items():
        first = cells[0][0]
        rows.append(
            [
                name,
                *(f"{value:,.0f}{'*' if changed else ''}" for value, changed in cells),
                *(f"{value / first:.3f}" for value, _ in cells[1:]),
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line.format(*header), rule, *(line.format(*row) for row in rows)])


def main() -> int:
    parser = argparse.ArgumentParser(description="Instructions per request (callgrind) of one or more checkouts.")
    parser.add_argument(
        "checkouts", nargs="*", type=Path, metavar="CHECKOUT", help="directories holding wsgi.py (default: this one)"
    )
    parser.add_argument("--requests", type=int, default=200, help="requests counted per figure (default 200)")
    parser.add_argument(
        "--hash-seed",
        default="0",
        help="the backend's PYTHONHASHSEED (default 0: the counts repeat within 0.2%%); 'random' leaves it to "
        "Python, as production does, and the counts then vary by about 1%% from run to run",
    )
    parser.add_argument("--keep", action="store_true", help="keep each measurement's folder (logs, dumps)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="WORD",
        help="measure only the requests whose name holds WORD (repeatable; 'floor' for the floor), "
        "e.g. --only brokered: a quicker comparison of one path",
    )
    args = parser.parse_args()
    if sys.platform != "linux":
        sys.exit("bench/instructions.py needs Linux and valgrind.")
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed; on Debian/Ubuntu: apt-get install -y valgrind")
    if not 1 <= args.requests <= 100_000:
        sys.exit("--requests must be between 1 and 100000")
    if args.hash_seed != "random" and not (args.hash_seed.isdigit() and int(args.hash_seed) <= 4294967295):
        sys.exit("--hash-seed must be 'random' or an integer from 0 to 4294967295")
    checkouts = [path.resolve() for path in (args.checkouts or [BENCH.parent])]
    for checkout in checkouts:
        check_checkout(checkout)
    # SIGTERM, and SIGINT even where a shell started us ignoring it, clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)

    kinds = [kind for kind in KINDS if not args.only or any(word in kind.name for word in args.only)]
    with_floor = not args.only or "floor" in args.only
    if not kinds and not with_floor:
        sys.exit(f"--only matches none of: {', '.join(kind.name for kind in KINDS)}, floor")
    print(machine(), flush=True)
    labels: list[str] = []
    counts: dict[str, list[tuple[float, bool]]] = {kind.name: [] for kind in kinds}
    started = time.monotonic()
    for number, checkout in enumerate(checkouts, 1):
        labels.append(f"({number}) {checkout.name} {describe(checkout)}")
        print(f"{labels[-1]}: {checkout}", flush=True)
        code = fingerprint(checkout)
        for kind in kinds:
            value = measure(checkout, kind, args.requests, args.hash_seed, args.keep)
            changed = fingerprint(checkout) != code
            counts[kind.name].append((value, changed))
            print(
                f"  [{time.monotonic() - started:5.0f}s] {kind.name}: {value:,.0f}"
                + (" (the checkout's code changed during the run)" if changed else ""),
                flush=True,
            )
    # The stack's floor, once: what each checkout's relay is divided by.
    floor = measure(BENCH.parent, FLOOR_KIND, args.requests, args.hash_seed, args.keep) if with_floor else None
    if floor is not None:
        print(f"  [{time.monotonic() - started:5.0f}s] {FLOOR_KIND.name}: {floor:,.0f}", flush=True)
    print(
        f"\n{args.requests} requests counted per figure after {WARM_UP} of warm-up, over {CONNECTIONS} keep-alive "
        f"connections; PYTHONHASHSEED={args.hash_seed}; valgrind --tool=callgrind {' '.join(VALGRIND_OPTIONS)}"
    )
    print(table(labels, counts))
    if floor is not None:
        print(f"\nthe floor (bench/floor_relay.py, the same request with the same Eventory token): {floor:,.0f}")
    for kind in [kind for kind in KINDS[:2] if kind in kinds and floor is not None]:
        assert floor is not None
        ratios = ", ".join(f"({number}) {value / floor:.3f}" for number, (value, _) in enumerate(counts[kind.name], 1))
        print(f"{kind.name} / floor: {ratios}")
    if any(changed for cells in counts.values() for _, changed in cells):
        print("* the checkout's Python files changed while this figure was measured: measure again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
