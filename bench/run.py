"""Benchmark of the Eventory proxy, run by hand from the repository root:

    python bench/run.py            # about a minute and a half; see bench/README.md

It starts the fake Eventory the tests use (tests/fake_eventory.py, as a process that signs in any
user) and the backend exactly as production runs it (`python wsgi.py`, waitress, default thread
count, a temporary instance folder and SQLite file), sets up an account and 10 Eventory logins
through the backend's own API, drives load with `wrk`, and prints every figure beside its baseline
measured in the same run, then a table of the issue's targets with PASS/FAIL. Exit status 0 when
all pass, 1 otherwise.

Linux only: the server's CPU time and memory are read from /proc/<pid>.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.client
import json
import os
import resource
import secrets
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from pathlib import Path
from urllib.parse import urlencode, urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FAKE = ROOT / "tests" / "fake_eventory.py"
FLOOR = BENCH / "floor_relay.py"
THREADS = 64  # the backend's default (BACKEND_THREADS), which the floor uses too
WRK_SCRIPT = BENCH / "wrk_report.lua"
sys.path.insert(0, str(ROOT))
from tests.fake_eventory import big_json_chunks, download_sha256  # noqa: E402

MB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOGINS = 10
ACCOUNT = {"username": "bench-user", "password": "a long enough benchmark passphrase"}
# Limits stay on, as in production, but this high the bench measures the relay, not 429s.
RATELIMIT_PROXY = "1000000/minute"

# Targets from issue 12, "Done when": ratios to references measured in the same run (absolute
# figures do not carry from one machine to the next). The floor is bench/floor_relay.py.
RELAY_CPU_FLOOR_RATIO = 1.3  # relay CPU per request, at c16 and c64
BROKERED_RATIO = 1.15  # brokered CPU per request / the client-held relay's, c16
AS_STARTED_RATIO = 1.15  # `python wsgi.py` as started / the same server pinned from outside
SLOW_RATIO_C16 = 0.9  # relayed req/s / direct, Eventory 50 ms late, c16
SLOW_FLOOR_SHARE_C64 = 0.75  # (relayed / direct) / (floor / direct), Eventory 50 ms late, c64
ADDED_P50_FLOOR_RATIO = 1.3  # p50 added at c1 / the floor's added p50
# Targets from issue 3 that carry as they are (they compare with the same run already).
RSS_GROWTH_MB = 32
RSS_DRIFT_MB = 8
FANOUT_MS = 350
# Issue 15: ten identical brokered GETs at once, Eventory 200 ms late, are one upstream call and are
# all answered in about one upstream time.
SHARED_CALLERS = 10
SHARED_DELAY_MS = 200
SHARED_RATIO = 1.5  # the last of the ten answered / one direct call's time
READ_CPU_FLOOR_RATIO = RELAY_CPU_FLOOR_RATIO  # a read may cost what a relayed request may
# Issue 11, point 5: one /multisite call has a bounded memory cost. Ten answers of 9 MiB each (each
# under the 10 MiB one login's answer may have) must grow the server by a few hundred MiB at most.
FANOUT_JSON_BYTES = 9 * MB
FANOUT_GROWTH_MB = 300
RSS_LIMIT_MB = 4096  # past this the bench abandons the call and stops the backend: the machine comes first
FANOUT_ANSWER_LIMIT = 1024 * MB  # the most of one /multisite answer the bench reads
FANOUT_CALL_SECONDS = 180  # the most one such call may take, answer read included
ROUNDS = 3  # the floor and the backend take turns this many times (paced, as-started)
# The relay's ratios (CPU per request, added latency, throughput with Eventory late): the floor and
# the backend take turns in TURNS short runs of TURN_SECONDS each, and the median of the turns'
# ratios counts. The machine's own speed drifts by tens of percent within seconds; turns of four
# seconds, three times, gave ratios 1.06-1.65 for the same code, while twelve one-second turns kept
# half of them within 0.03 of the median.
TURNS = 12
TURN_SECONDS = 1
PACED_REQUESTS = 150  # per server and round in the paced step
PACED_GAP = 0.02  # seconds between the paced step's requests: a server that is not busy
FAKE_MIN_RPS = 10_000  # "tens of thousands a second": below this the fake could be the bottleneck
NOISY_CORES = 0.15  # other processes' mean CPU use above which the run is flagged as disturbed


# --- processes ------------------------------------------------------------------------------


class Server:
    """A child process whose CPU time and memory the bench reads from /proc."""

    def __init__(self, name: str, proc: subprocess.Popen, url: str, log: Path | None = None):
        self.name, self.proc, self.url, self.log = name, proc, url, log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system time of every thread of the process."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MiB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux 4.0+), so a later peak belongs to what came after."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_announcing(
    name: str, script: Path, arguments: list[str], start_seconds: float, cpus: set[int] | None = None
) -> Server:
    """One of the bench's own servers (the fake, the floor): started with --port 0, it prints
    `PORT <n>` once it listens, within `start_seconds`; with `cpus`, pinned to them."""
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    server = Server(name, proc, "")
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], start_seconds)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("PORT "):
        server.stop()
        raise RuntimeError(f"the {name} did not start")
    server.url = f"http://127.0.0.1:{int(line.split()[1])}"
    return server


def start_fake(max_seconds: float) -> Server:
    return start_announcing("fake Eventory", FAKE, ["--any-user", "--max-seconds", str(max_seconds)], 15)


def backend_env(workdir: Path, eventory_url: str, port: int) -> dict[str, str]:
    """The backend's environment: only what the bench sets (a developer's own BACKEND_* or .env
    must not change the figures), limits on but out of the way."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("BACKEND_")}
    env.update(
        {
            "PYTHON_DOTENV_DISABLED": "1",
            "BACKEND_PORT": str(port),
            "BACKEND_EVENTORY_URL": eventory_url,
            "BACKEND_INSTANCE_PATH": str(workdir / "instance"),
            "BACKEND_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "BACKEND_SECRET_KEY": secrets.token_urlsafe(48),
            "BACKEND_CREDENTIALS_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),  # a Fernet key
            "BACKEND_RATELIMIT_PROXY": RATELIMIT_PROXY,
        }
    )
    return env


def start_backend(
    workdir: Path,
    eventory_url: str,
    extra_env: dict[str, str] | None = None,
    cpus: set[int] | None = None,
    name: str = "backend",
) -> Server:
    """`python wsgi.py` as the README starts it; with `cpus`, pinned to them from outside first
    (as a unit file's CPUAffinity= does), for comparison."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = backend_env(workdir, eventory_url, port)
    env.update(extra_env or {})
    log = workdir / "backend.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "wsgi.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
    server = Server(name, proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not server.alive():
            break
        with contextlib.suppress(OSError):
            if call(server.url, "GET", "/auth/me").status == 401:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the backend did not start; its log:\n{log.read_text()[-3000:]}")


def start_floor(eventory_url: str, cpus: set[int], threads: int) -> Server:
    """bench/floor_relay.py under waitress with the backend's thread count, on the backend's CPUs."""
    arguments = ["--eventory", eventory_url, "--threads", str(threads)]
    return start_announcing("floor relay", FLOOR, arguments, 30, cpus)


def cpus_of(server: Server) -> set[int]:
    """The CPUs a process's main thread may run on (Linux's Cpus_allowed_list: "0-1", "1", "0,2")."""
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            cpus: set[int] = set()
            for part in line.split(":", 1)[1].strip().split(","):
                low, _, high = part.partition("-")
                cpus.update(range(int(low), int(high or low) + 1))
            return cpus
    raise RuntimeError("no Cpus_allowed_list")


# --- one-off HTTP calls ---------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


def call(
    base: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30,
) -> Reply:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.read())
    finally:
        conn.close()


def call_json(base: str, method: str, path: str, payload: object, headers: dict[str, str] | None = None) -> Reply:
    return call(
        base,
        method,
        path,
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def call_form(base: str, path: str, form: dict[str, str]) -> Reply:
    return call(
        base, "POST", path, body=urlencode(form).encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )


def expect(reply: Reply, status: int, what: str) -> Reply:
    if reply.status != status:
        raise RuntimeError(f"{what}: expected {status}, got {reply.status}: {reply.body[:300]!r}")
    return reply


def download(base: str, path: str, headers: dict[str, str]) -> tuple[str, int, float]:
    """(SHA-256, bytes, seconds) of a GET, read in 1 MiB pieces so the bench stays small."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    started = time.perf_counter()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"download {path}: status {response.status}")
        digest, size = sha256(), 0
        while chunk := response.read(MB):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size, time.perf_counter() - started
    finally:
        conn.close()


# --- wrk ------------------------------------------------------------------------------------


@dataclass
class Load:
    """One wrk run; `cpu_ms` is the watched server's CPU per completed request."""

    connections: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors (connect, read, write, timeout) plus non-2xx/3xx answers
    cpu_ms: float | None = None
    other_cores: float = 0.0  # CPU used meanwhile by processes that are not part of the bench


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent not idle, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class Noise:
    """CPU that neither the bench, wrk, the fake nor the backend used while we measured.

    On a shared 2-core machine another process's load inflates every figure; printing it
    tells a real regression from a busy neighbour.
    """

    servers: list[Server] = []
    samples: list[float] = []  # other processes' CPU, in cores, one per measured wrk run
    wait_budget = 0.0  # seconds the whole run may still spend waiting for a quiet machine

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.busy = busy_cpu_seconds()
        self.ours = self._ours()

    @classmethod
    def _ours(cls) -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once waited for
        return (
            sum(server.cpu_seconds() for server in cls.servers if server.alive())
            + time.process_time()
            + children.ru_utime
            + children.ru_stime
        )

    def cores(self, record: bool = True) -> float:
        other = (busy_cpu_seconds() - self.busy) - (self._ours() - self.ours)
        value = max(0.0, other / (time.monotonic() - self.wall))
        if record:
            Noise.samples.append(value)
        return value

    @classmethod
    def settle(cls) -> None:
        """Wait, within the run's budget, until other processes leave the CPUs alone."""
        while cls.wait_budget > 0:
            probe = cls()
            time.sleep(0.3)
            if probe.cores(record=False) <= NOISY_CORES:
                return
            cls.wait_budget -= 0.3


def wrk(
    url: str,
    connections: int,
    seconds: int,
    headers: dict[str, str],
    server: Server | None = None,
    settle: bool = True,
) -> Load:
    # One wrk thread: on a 2-core machine every extra thread is CPU taken from the server.
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(WRK_SCRIPT), url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if settle:
        Noise.settle()
    noise = Noise()
    before = server.cpu_seconds() if server else 0.0
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=False)
    after = server.cpu_seconds() if server else 0.0
    other = noise.cores()
    if other > NOISY_CORES:
        print(f"          (other processes used {other:.2f} cores during this run)", flush=True)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {result.stdout[-500:]} {result.stderr[-500:]}")
    data = json.loads(line[len("WRK_JSON ") :])
    requests = data["requests"]
    return Load(
        connections=connections,
        requests=requests,
        rps=requests / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=sum(data[kind] for kind in ("connect", "read", "write", "timeout", "status")),
        cpu_ms=(after - before) * 1000 / requests if server and requests else None,
        other_cores=other,
    )


# --- results --------------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    measured: str
    baseline: str
    comparison: str
    target: str = ""
    ok: bool | None = None  # None: shown for context, no target


class Report:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        verdict = "" if row.ok is None else ("PASS" if row.ok else "FAIL")
        print(
            f"          {row.figure}: {row.measured} | baseline {row.baseline} | {row.comparison} {verdict}", flush=True
        )

    def table(self) -> str:
        header = ("figure", "through the backend", "baseline, same run", "ratio / added", "target", "result")
        lines = [
            (
                r.figure,
                r.measured,
                r.baseline,
                r.comparison,
                r.target,
                "" if r.ok is None else ("PASS" if r.ok else "FAIL"),
            )
            for r in self.rows
        ]
        widths = [max(len(str(col)) for col in column) for column in zip(header, *lines, strict=True)]
        fmt = " | ".join(f"{{:<{w}}}" for w in widths)
        rule = "-+-".join("-" * w for w in widths)
        return "\n".join([fmt.format(*header), rule, *(fmt.format(*line) for line in lines)])


def ms(value: float) -> str:
    return f"{value:.2f} ms"


def rps(value: float) -> str:
    return f"{value:,.0f} req/s"


# --- the figures ----------------------------------------------------------------------------


@dataclass
class Setup:
    backend_auth: dict[str, str]  # Authorization for the backend
    relay_headers: dict[str, str]  # backend token + client-held Eventory token
    direct_headers: dict[str, str]  # the same Eventory token, straight to the fake
    floor_headers: dict[str, str]  # the same Eventory token, through the floor (which sends it on)
    login_ids: list[int]
    login_usernames: list[str]


def set_up(backend: Server, fake: Server) -> Setup:
    """An account and 10 saved Eventory logins, made through the backend's own API."""
    expect(call_json(backend.url, "POST", "/auth/register", ACCOUNT), 201, "register")
    token = expect(call_form(backend.url, "/auth/login", ACCOUNT), 200, "log in").json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    ids, usernames = [], []
    for i in range(LOGINS):
        login = {
            "label": f"Bench org {i}",
            "username": f"bench-org-{i}@example.com",
            "password": f"eventory password {i}",
            "color": f"#{(i * 0x1F3D5B) % 0xFFFFFF:06x}",
        }
        reply = expect(call_json(backend.url, "POST", "/logins", login, auth), 201, "save a login")
        ids.append(reply.json()["id"])
        usernames.append(login["username"])
    eventory = expect(
        call_form(fake.url, "/login-json", {"username": "direct@example.com", "password": "x"}),
        200,
        "sign in to the fake",
    ).json()["access_token"]
    relayed = call(
        backend.url, "GET", "/eventory/jobs/list", headers={**auth, "X-Eventory-Authorization": f"Bearer {eventory}"}
    )
    direct = call(fake.url, "GET", "/jobs/list", headers={"Authorization": f"Bearer {eventory}"})
    if (relayed.status, relayed.body) != (direct.status, direct.body) or direct.status != 200:
        raise RuntimeError(f"the relay does not answer like the fake: {relayed.status} {relayed.body[:200]!r}")
    return Setup(
        backend_auth=auth,
        relay_headers={**auth, "X-Eventory-Authorization": f"Bearer {eventory}"},
        direct_headers={"Authorization": f"Bearer {eventory}"},
        floor_headers={"X-Eventory-Authorization": f"Bearer {eventory}"},
        login_ids=ids,
        login_usernames=usernames,
    )


def relay_cost(report: Report, backend: Server, floor: Server, fake: Server, s: Setup, seconds: int) -> None:
    report.step(
        f"relay: GET /eventory/jobs/list through the floor and the backend against GET /jobs/list, "
        f"concurrency 16, 64 and 1, {TURNS} turns of {TURN_SECONDS} s ({8 * TURNS * TURN_SECONDS + seconds:.0f} s)"
    )
    direct_url, relay_url = f"{fake.url}/jobs/list", f"{backend.url}/eventory/jobs/list"
    floor_url = f"{floor.url}/eventory/jobs/list"
    direct = wrk(direct_url, 16, seconds, s.direct_headers, fake)
    # Shows the fake outpaces the backend by far, so the backend's figures are its own.
    report.add(
        Row(
            "fake Eventory alone, c16",
            rps(direct.rps),
            "-",
            f"{direct.errors} errors",
            f">= {FAKE_MIN_RPS:,} req/s",
            direct.rps >= FAKE_MIN_RPS and direct.errors == 0,
        )
    )
    first_login = {**s.backend_auth, "X-Eventory-Login": str(s.login_ids[0])}
    for connections in (16, 64):
        wrk(floor_url, connections, 1, s.floor_headers, settle=False)  # warm-up: fills the connection pools
        wrk(relay_url, connections, 1, s.relay_headers, settle=False)
    wrk(relay_url, 16, 1, first_login, settle=False)
    turns: list[dict[str, Load]] = []
    for _ in range(TURNS):
        measured = {}
        for connections in (16, 64):
            measured[f"floor{connections}"] = wrk(floor_url, connections, TURN_SECONDS, s.floor_headers, floor)
            measured[f"relay{connections}"] = wrk(relay_url, connections, TURN_SECONDS, s.relay_headers, backend)
        # The product's main path: the broker reads the stored login and injects its cached token.
        measured["brokered"] = wrk(relay_url, 16, TURN_SECONDS, first_login, backend)
        turns.append(measured)

    def cpu(load: Load) -> float:
        return load.cpu_ms or 1e-9

    def median_of(name: str) -> str:
        return f"median {statistics.median(cpu(turn[name]) for turn in turns):.2f} ms"

    for connections in (16, 64):
        ratios = [cpu(turn[f"relay{connections}"]) / cpu(turn[f"floor{connections}"]) for turn in turns]
        ratio = statistics.median(ratios)
        errors = sum(turn[f"relay{connections}"].errors + turn[f"floor{connections}"].errors for turn in turns)
        report.add(
            Row(
                f"relay CPU/request, c{connections}",
                f"{median_of(f'relay{connections}')} ({rps(turns[-1][f'relay{connections}'].rps)})",
                f"floor {median_of(f'floor{connections}')} ({rps(turns[-1][f'floor{connections}'].rps)}); "
                f"fake {ms(direct.cpu_ms or 0)}",
                f"median {ratio:.2f}x the floor ({spread(ratios)}); {errors} err",
                f"<= {RELAY_CPU_FLOOR_RATIO}x the floor",
                ratio <= RELAY_CPU_FLOOR_RATIO and errors == 0,
            )
        )
    ratios = [cpu(turn["brokered"]) / cpu(turn["relay16"]) for turn in turns]
    ratio = statistics.median(ratios)
    errors = sum(turn["brokered"].errors for turn in turns)
    report.add(
        Row(
            "brokered (X-Eventory-Login) CPU/req, c16",
            f"{median_of('brokered')} ({rps(turns[-1]['brokered'].rps)})",
            f"client-held token {median_of('relay16')}",
            f"median {ratio:.2f}x the client-held relay ({spread(ratios)}); {errors} err",
            f"<= {BROKERED_RATIO}x client-held",
            ratio <= BROKERED_RATIO and errors == 0,
        )
    )

    latencies = []
    for _ in range(TURNS):
        direct1 = wrk(direct_url, 1, TURN_SECONDS, s.direct_headers)
        floor1 = wrk(floor_url, 1, TURN_SECONDS, s.floor_headers)
        relayed1 = wrk(relay_url, 1, TURN_SECONDS, s.relay_headers)
        latencies.append((direct1, floor1, relayed1))
    ratios = []
    for direct1, floor1, relayed1 in latencies:
        added, floor_added = relayed1.p50_ms - direct1.p50_ms, floor1.p50_ms - direct1.p50_ms
        ratios.append(added / floor_added if floor_added > 0 else float("inf"))
    ratio = statistics.median(ratios)
    p50 = {
        name: statistics.median(turn[i].p50_ms for turn in latencies)
        for i, name in enumerate(("direct", "floor", "relay"))
    }
    errors = sum(relayed1.errors for _, _, relayed1 in latencies)
    report.add(
        Row(
            "relay p50 latency, c1",
            f"median {ms(p50['relay'])} (+{ms(p50['relay'] - p50['direct'])})",
            f"fake {ms(p50['direct'])}; floor {ms(p50['floor'])} (+{ms(p50['floor'] - p50['direct'])})",
            f"median {ratio:.2f}x the floor's added p50 ({spread(ratios)}); {errors} err",
            f"<= {ADDED_P50_FLOOR_RATIO}x the floor's",
            ratio <= ADDED_P50_FLOOR_RATIO and errors == 0,
        )
    )


def spread(ratios: list[float]) -> str:
    """The middle half of the turns' ratios, e.g. "half within 1.37-1.41"."""
    if len(ratios) < 4:
        return ", ".join(f"{x:.2f}" for x in ratios)
    low, _, high = statistics.quantiles(ratios, n=4)
    return f"half within {low:.2f}-{high:.2f}"


def paced(report: Report, backend: Server, floor: Server, s: Setup) -> None:
    """CPU per relayed request when requests come one at a time, PACED_GAP apart, as a server that
    is not busy sees them: what a request starts or wakes up each time (a thread, a timer) shows
    here, where under load it is shared by many requests."""
    report.step(
        f"relay CPU per request, one request every {PACED_GAP * 1000:.0f} ms, {PACED_REQUESTS} requests "
        f"x {ROUNDS} rounds each for the floor, the relay and the brokered relay "
        f"({3 * ROUNDS * PACED_REQUESTS * (PACED_GAP + 0.003):.0f} s)"
    )
    servers = (
        ("floor", floor, s.floor_headers),
        ("relay", backend, s.relay_headers),
        ("brokered", backend, {**s.backend_auth, "X-Eventory-Login": str(s.login_ids[0])}),
    )
    figures: dict[str, list[float]] = {name: [] for name, _, _ in servers}
    for _ in range(ROUNDS):  # taking turns, as in relay_cost
        for name, server, headers in servers:
            parts = urlsplit(server.url)
            connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
            try:
                for counted in (False, True):  # a few to warm the connection up, then the counted ones
                    started = server.cpu_seconds()
                    for _ in range(PACED_REQUESTS if counted else 10):
                        connection.request("GET", "/eventory/jobs/list", headers=headers)
                        answer = connection.getresponse()
                        answer.read()
                        if answer.status != 200:
                            raise RuntimeError(f"paced {name}: {answer.status}")
                        time.sleep(PACED_GAP)
                figures[name].append((server.cpu_seconds() - started) / PACED_REQUESTS * 1000)
            finally:
                connection.close()
    floor_ms = statistics.median(figures["floor"])
    for name in ("relay", "brokered"):
        ratios = [mine / theirs for mine, theirs in zip(figures[name], figures["floor"], strict=True)]
        ratio = statistics.median(ratios)
        report.add(
            Row(
                f"{name} CPU/request, paced",
                "/".join(f"{value:.2f}" for value in figures[name]) + " ms",
                f"floor {'/'.join(f'{value:.2f}' for value in figures['floor'])} ms (median {floor_ms:.2f})",
                f"median {ratio:.2f}x the floor ({', '.join(f'{x:.2f}' for x in ratios)})",
                f"<= {RELAY_CPU_FLOOR_RATIO}x the floor",
                ratio <= RELAY_CPU_FLOOR_RATIO,
            )
        )


def as_started(report: Report, backend: Server, pinned: Server, s: Setup, pinned_setup: Setup, seconds: int) -> None:
    """`python wsgi.py` as the README starts it against the same server pinned from outside, on the same CPU."""
    report.step(
        f"python wsgi.py as started, and pinned by the bench, concurrency 16 and 64 ({(4 * ROUNDS + 4) * seconds} s)"
    )
    for connections in (16, 64):
        for server, setup in ((backend, s), (pinned, pinned_setup)):
            wrk(f"{server.url}/eventory/jobs/list", connections, 1, setup.relay_headers, settle=False)
        rounds = []
        for _ in range(ROUNDS):  # taking turns, as in relay_cost: the median of the rounds' ratios counts
            loads = {
                server.name: wrk(f"{server.url}/eventory/jobs/list", connections, seconds, setup.relay_headers, server)
                for server, setup in ((backend, s), (pinned, pinned_setup))
            }
            rounds.append((loads[backend.name], loads[pinned.name]))
        ratios = [(started.cpu_ms or 0) / (held.cpu_ms or 1e-9) for started, held in rounds]
        ratio = statistics.median(ratios)
        errors = sum(started.errors + held.errors for started, held in rounds)
        report.add(
            Row(
                f"as started / pinned, relay CPU, c{connections}",
                "/".join(f"{started.cpu_ms or 0:.2f}" for started, _ in rounds) + " ms",
                "pinned " + "/".join(f"{held.cpu_ms or 0:.2f}" for _, held in rounds) + " ms",
                f"median {ratio:.2f}x ({', '.join(f'{x:.2f}' for x in ratios)}); {errors} err",
                f"<= {AS_STARTED_RATIO}x",
                ratio <= AS_STARTED_RATIO and errors == 0,
            )
        )


def slow_upstream(report: Report, backend: Server, floor: Server, fake: Server, s: Setup, seconds: int) -> None:
    report.step(
        f"relay with Eventory answering 50 ms late, concurrency 16 and 64, {TURNS} turns of {TURN_SECONDS} s "
        f"({6 * TURNS * TURN_SECONDS:.0f} s)"
    )
    query = "/jobs/list?delay_ms=50"
    for connections in (16, 64):
        wrk(f"{floor.url}/eventory{query}", connections, 1, s.floor_headers, settle=False)
        wrk(f"{backend.url}/eventory{query}", connections, 1, s.relay_headers, settle=False)
        turns = []
        for _ in range(TURNS):  # direct, the floor and the backend take turns, as in relay_cost
            direct = wrk(f"{fake.url}{query}", connections, TURN_SECONDS, s.direct_headers)
            floored = wrk(f"{floor.url}/eventory{query}", connections, TURN_SECONDS, s.floor_headers, floor)
            relayed = wrk(f"{backend.url}/eventory{query}", connections, TURN_SECONDS, s.relay_headers, backend)
            turns.append((relayed.rps / direct.rps, floored.rps / direct.rps, relayed, floored))
        ratio = statistics.median(turn[0] for turn in turns)
        floor_ratio = statistics.median(turn[1] for turn in turns)
        shares = [relayed_share / floor_share for relayed_share, floor_share, _, _ in turns]
        share = statistics.median(shares)
        errors = sum(relayed.errors + floored.errors for _, _, relayed, floored in turns)
        if connections == 16:
            target, ok = f">= {SLOW_RATIO_C16}x direct", ratio >= SLOW_RATIO_C16
        else:  # one core is the limit here: throughput follows CPU per request, so the floor is the reference
            target, ok = f">= {SLOW_FLOOR_SHARE_C64}x the floor's", share >= SLOW_FLOOR_SHARE_C64
        report.add(
            Row(
                f"relay req/s, Eventory +50 ms, c{connections}",
                f"median {ratio:.3f}x direct (last turn {rps(turns[-1][2].rps)}, p50 {ms(turns[-1][2].p50_ms)})",
                f"floor: median {floor_ratio:.3f}x direct",
                f"median {share:.2f}x the floor's ({spread(shares)}); {errors} err",
                target,
                ok and errors == 0,
            )
        )


@contextlib.contextmanager
def rss_sampler(
    server: Server, limit_mb: float | None = None, on_limit: Callable[[], None] | None = None
) -> Iterator[list[float]]:
    """Highest VmRSS seen every 10 ms: a second opinion on VmHWM, which not every kernel resets.
    With `limit_mb`, `on_limit` is called once (from the sampling thread) when VmRSS passes it."""
    peak = [server.memory_mb()[0]]
    stop = threading.Event()

    def sample() -> None:
        fired = False
        while not stop.is_set():
            with contextlib.suppress(OSError, KeyError):
                peak[0] = max(peak[0], server.memory_mb()[0])
            if limit_mb is not None and on_limit is not None and not fired and peak[0] > limit_mb:
                fired = True
                on_limit()
            stop.wait(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join(timeout=5)


def streaming(report: Report, backend: Server, fake: Server, s: Setup, size_mb: int, rounds: int) -> None:
    report.step(f"streaming: {size_mb} MB straight from the fake, then {rounds} times through the relay")
    size = size_mb * 1000 * 1000
    path = f"/download?size={size}"
    direct_sha, direct_bytes, direct_s = download(fake.url, path, s.direct_headers)
    rss_before, _ = backend.memory_mb()
    reset = backend.reset_peak()
    with rss_sampler(backend) as sampled:
        relay_sha, relay_bytes, relay_s = download(backend.url, f"/eventory{path}", s.relay_headers)
    rss_first, hwm = backend.memory_mb()
    peak = max(sampled[0], hwm if reset else 0.0)
    growth = peak - rss_before
    same = relay_sha == direct_sha == download_sha256(size) and relay_bytes == direct_bytes == size
    relay_text = f"sha256 {relay_sha[:12]}…, {size / MB / relay_s:,.0f} MiB/s"
    report.add(
        Row(
            f"{size_mb} MB download through relay",
            relay_text,
            f"sha256 {direct_sha[:12]}…, {size / MB / direct_s:,.0f} MiB/s",
            "identical" if same else "DIFFERENT",
            "same SHA-256",
            same,
        )
    )
    report.add(
        Row(
            "server peak RSS growth, 1st download",
            f"{growth:+.1f} MB (peak {peak:.1f} MB)",
            f"RSS before {rss_before:.1f} MB",
            "",
            f"<= {RSS_GROWTH_MB} MB",
            growth <= RSS_GROWTH_MB,
        )
    )
    all_same = True
    for _ in range(rounds - 1):
        sha, got, _ = download(backend.url, f"/eventory{path}", s.relay_headers)
        all_same &= sha == direct_sha and got == size
    rss_last, _ = backend.memory_mb()
    drift = rss_last - rss_first
    report.add(
        Row(
            f"server RSS after {rounds} downloads",
            f"{rss_last:.1f} MB",
            f"after the 1st {rss_first:.1f} MB",
            f"{drift:+.1f} MB{'' if all_same else '; a later download DIFFERED'}",
            f"within {RSS_DRIFT_MB} MB",
            abs(drift) <= RSS_DRIFT_MB and all_same,
        )
    )


def fake_tokens(fake: Server, s: Setup) -> list[str]:
    """The Eventory token of each saved login, signed in straight at the fake (for the baselines)."""
    return [
        expect(call_form(fake.url, "/login-json", {"username": name, "password": "x"}), 200, "sign in").json()[
            "access_token"
        ]
        for name in s.login_usernames
    ]


def fan_out(report: Report, backend: Server, fake: Server, s: Setup, calls: int) -> None:
    report.step(f"fan-out: {LOGINS} logins, Eventory answering 200 ms late for each")
    query = "jobs/list?delay_ms=200"
    tokens = fake_tokens(fake, s)
    started = time.perf_counter()
    for token in tokens:
        expect(call(fake.url, "GET", f"/{query}", headers={"Authorization": f"Bearer {token}"}), 200, "direct call")
    sequential_ms = (time.perf_counter() - started) * 1000

    timings, problems = [], []
    for _ in range(1 + calls):  # the first call also signs the 10 logins in (cold token cache)
        started = time.perf_counter()
        reply = call(backend.url, "GET", f"/multisite/{query}", headers=s.backend_auth)
        timings.append((time.perf_counter() - started) * 1000)
        results = reply.json().get("results", []) if reply.status == 200 else []
        if (
            reply.status != 200
            or len(results) != LOGINS
            or any(r["status"] != 200 or r["error"] or not isinstance(r["data"], list) for r in results)
        ):
            problems.append(f"status {reply.status}: {reply.body[:200]!r}")
    worst = max(timings)
    report.add(
        Row(
            f"fan-out /multisite/jobs/list, {LOGINS} x 200 ms",
            f"worst {worst:.0f} ms (cold {timings[0]:.0f}, median {statistics.median(timings[1:]):.0f})",
            f"{sequential_ms:.0f} ms, {LOGINS} direct calls in a row",
            f"{sequential_ms / worst:.1f}x faster; {len(problems)} bad answers",
            f"<= {FANOUT_MS} ms",
            worst <= FANOUT_MS and not problems,
        )
    )
    for problem in problems[:3]:
        print(f"          fan-out problem: {problem}")


def upstream_calls(fake: Server, path: str) -> int:
    return expect(call(fake.url, "GET", f"/calls?path={path}"), 200, "the fake's call count").json()["calls"]


def at_once(count: int, request: Callable[[], Reply]) -> tuple[float, list[Reply | None]]:
    """`request()` from `count` threads released together: ms until the last answered, and the replies."""
    barrier = threading.Barrier(count + 1)
    replies: list[Reply | None] = [None] * count

    def one(index: int) -> None:
        barrier.wait()
        replies[index] = request()

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - started) * 1000, replies


def shared_reads(report: Report, backend: Server, fake: Server, s: Setup, rounds: int = 3) -> None:
    report.step(
        f"shared reads: {SHARED_CALLERS} identical brokered GETs at once, Eventory answering {SHARED_DELAY_MS} ms late"
    )
    brokered = {**s.backend_auth, "X-Eventory-Login": str(s.login_ids[0])}
    expect(call(backend.url, "GET", "/eventory/user-info", headers=brokered), 200, "sign the login in")
    token = fake_tokens(fake, s)[0]
    worst_ratio, problems = 0.0, []
    for number in range(rounds):
        path = f"/jobs/list?delay_ms={SHARED_DELAY_MS}&round={number}"
        started = time.perf_counter()
        expect(call(fake.url, "GET", path, headers={"Authorization": f"Bearer {token}"}), 200, "direct call")
        upstream_ms = (time.perf_counter() - started) * 1000
        before = upstream_calls(fake, "/jobs/list")
        request = functools.partial(call, backend.url, "GET", f"/eventory{path}", headers=brokered)
        all_ms, replies = at_once(SHARED_CALLERS, request)
        calls = upstream_calls(fake, "/jobs/list") - before
        answers = {(reply.status, reply.body) for reply in replies if reply is not None}
        ratio = all_ms / upstream_ms
        worst_ratio = max(worst_ratio, ratio)
        if calls != 1 or len(answers) != 1 or next(iter(answers))[0] != 200:
            problems.append(f"round {number}: {calls} upstream calls, {len(answers)} distinct answers")
        print(
            f"          round {number}: all {SHARED_CALLERS} answered in {all_ms:.0f} ms, one direct call "
            f"{upstream_ms:.0f} ms ({ratio:.2f}x), {calls} upstream call(s)"
        )
    report.add(
        Row(
            f"{SHARED_CALLERS} identical brokered GETs, Eventory {SHARED_DELAY_MS} ms late",
            f"worst of {rounds}: all answered in {worst_ratio:.2f}x one upstream time",
            f"one direct call, {SHARED_DELAY_MS} ms late",
            f"{len(problems)} rounds with more than one upstream call or differing answers",
            f"1 call, <= {SHARED_RATIO}x",
            worst_ratio <= SHARED_RATIO and not problems,
        )
    )
    for problem in problems:
        print(f"          shared reads problem: {problem}")


@dataclass
class FanOutMemory:
    """One `/multisite` call watched for the server's memory (MiB) and its answer summarised."""

    rss_before: float
    peak: float = 0.0
    seconds: float = 0.0
    status: int | None = None
    answer_bytes: int = 0
    entries: int = 0
    ok: int = 0  # entries with the fake's answer, byte for byte once serialised again
    errors: int = 0  # entries with an error (and no data)
    wrong: int = 0  # entries with neither the right data nor an error
    error_texts: list[str] = field(default_factory=list)
    over_limit: bool = False  # RSS passed RSS_LIMIT_MB: the call was abandoned, the backend stopped
    problem: str | None = None  # the call itself failed

    @property
    def growth(self) -> float:
        return self.peak - self.rss_before


def fan_out_memory_once(backend: Server, path: str, headers: dict[str, str], expected: str) -> FanOutMemory:
    """One GET, with the backend's peak RSS (VmHWM reset before, and VmRSS sampled every 10 ms);
    entries are checked against `expected`, the SHA-256 of each login's answer from the fake."""
    result = FanOutMemory(rss_before=backend.memory_mb()[0])
    parts = urlsplit(backend.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    conn.connect()

    def abandon() -> None:  # from the sampling thread: the machine must not run out of memory
        result.over_limit = True
        with contextlib.suppress(OSError):
            if conn.sock is not None:
                conn.sock.shutdown(socket.SHUT_RDWR)
        backend.proc.kill()  # the fan-out goes on server-side after its client leaves

    body = bytearray()
    reset = backend.reset_peak()
    started = time.monotonic()
    with rss_sampler(backend, RSS_LIMIT_MB, abandon) as sampled:
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            result.status = response.status
            while chunk := response.read(MB):
                body += chunk
                if len(body) > FANOUT_ANSWER_LIMIT:
                    result.problem = f"answer over {FANOUT_ANSWER_LIMIT // MB} MiB, not read further"
                    break
                if time.monotonic() - started > FANOUT_CALL_SECONDS:
                    result.problem = f"answer not read in {FANOUT_CALL_SECONDS} s"
                    break
        except (OSError, http.client.HTTPException) as error:
            result.problem = f"{type(error).__name__}: {error}"
        finally:
            conn.close()
        result.seconds = time.monotonic() - started
    result.answer_bytes = len(body)
    result.peak = sampled[0]
    if reset and not result.over_limit:
        with contextlib.suppress(OSError, KeyError):
            result.peak = max(result.peak, backend.memory_mb()[1])
    if result.over_limit or result.problem or result.status != 200:
        if result.status != 200 and not result.problem:
            result.problem = f"status {result.status}: {bytes(body[:200])!r}"
        return result

    def summarise(obj: dict) -> dict:
        # Called for each entry once parsed: its data is replaced by a digest, so at most one
        # login's data is held as Python objects here, never the ten.
        if "login_id" in obj:
            data = obj.get("data")
            if isinstance(data, list):
                obj["data"] = sha256(json.dumps(data, separators=(",", ":")).encode()).hexdigest()
        return obj

    try:
        answer = json.loads(body, object_hook=summarise)
    except ValueError as error:
        result.problem = f"the answer is not JSON: {error}"
        return result
    finally:
        del body
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        result.problem = "no results list in the answer"
        return result
    result.entries = len(results)
    for entry in results:
        if entry.get("error") is None and entry.get("status") == 200 and entry.get("data") == expected:
            result.ok += 1
        elif entry.get("error") is not None and entry.get("data") is None:
            result.errors += 1
            result.error_texts.append(str(entry["error"]))
        else:
            result.wrong += 1
    return result


def fan_out_memory(report: Report, backend: Server, fake: Server, s: Setup, rounds: int = 2) -> bool:
    """Peak memory of one /multisite call over ten large JSON answers (issue 11, point 5).
    True when the backend had to be stopped (RSS past RSS_LIMIT_MB)."""
    size = FANOUT_JSON_BYTES
    path = f"/big-json?size={size}"
    report.step(
        f"fan-out memory: GET /multisite{path} over {LOGINS} logins, {rounds} calls "
        f"(each stopped if the server passes {RSS_LIMIT_MB / 1024:g} GiB)"
    )
    digest = sha256()
    for chunk in big_json_chunks(size):
        digest.update(chunk)
    expected = digest.hexdigest()

    # Baseline: the same ten answers straight from the fake, one after the other.
    direct_bytes, direct_same, started = 0, True, time.perf_counter()
    for token in fake_tokens(fake, s):
        sha, got, _ = download(fake.url, path, {"Authorization": f"Bearer {token}"})
        direct_bytes += got
        direct_same &= sha == expected and got == size
    direct_s = time.perf_counter() - started
    baseline = f"{LOGINS} direct answers, {direct_bytes / MB:.0f} MiB in {direct_s:.2f} s" + (
        "" if direct_same else " (NOT the expected bytes)"
    )

    stopped = False
    for number in range(1, rounds + 1):
        which = "1st call" if number == 1 else f"call {number} (warm)"
        name = f"fan-out {LOGINS} x {size / MB:.0f} MiB JSON, {which}"
        target = f"<= {FANOUT_GROWTH_MB} MiB growth"
        if stopped:
            report.add(Row(name, "not run: the backend was stopped", baseline, "", target, False))
            continue
        r = fan_out_memory_once(backend, f"/multisite{path}", s.backend_auth, expected)
        if r.over_limit:
            stopped = True
            measured = f"over {RSS_LIMIT_MB / 1024:g} GiB (call abandoned, backend stopped)"
        else:
            wrong = f", {r.wrong} WRONG" if r.wrong else ""
            measured = f"peak RSS {r.growth:+.0f} MiB (entries: {r.ok} ok, {r.errors} errors{wrong})"
        comparison = f"RSS before {r.rss_before:.0f} MiB; {r.seconds:.1f} s; answer {r.answer_bytes / MB:.1f} MiB"
        if r.problem and not r.over_limit:
            comparison += f"; {r.problem[:120]}"
        fine = (
            not r.over_limit
            and not r.problem
            and r.growth <= FANOUT_GROWTH_MB
            and r.entries == LOGINS
            and r.wrong == 0
            and direct_same
        )
        report.add(Row(name, measured, baseline, comparison, target, fine))
        for text in sorted(set(r.error_texts)):
            print(f"          entry error (x{r.error_texts.count(text)}): {text[:200]}", flush=True)
    return stopped


def reads(report: Report, backend: Server, floor: Server, fake: Server, s: Setup, seconds: int) -> None:
    report.step(f"reads: /auth/me and /logins ({LOGINS} logins) at c1, c16, c64 ({10 * seconds:.0f} s)")
    # Baseline: the fake's user-info, the same kind of small authenticated JSON read, without the backend.
    baselines = {c: wrk(f"{fake.url}/user-info", c, seconds, s.direct_headers) for c in (1, 16, 64)}
    floor_url = f"{floor.url}/eventory/jobs/list"
    wrk(floor_url, 16, 1, s.floor_headers, settle=False)
    floor_cpu = wrk(floor_url, 16, seconds, s.floor_headers, floor).cpu_ms or 1e-9
    for path in ("/auth/me", "/logins"):
        for connections in (1, 16, 64):
            load = wrk(f"{backend.url}{path}", connections, seconds, s.backend_auth, backend)
            base = baselines[connections]
            ratio = (load.cpu_ms or 0.0) / floor_cpu
            report.add(
                Row(
                    f"GET {path}, c{connections}",
                    f"CPU {ms(load.cpu_ms or 0.0)}/req; {rps(load.rps)}, p50 {ms(load.p50_ms)}, p99 {ms(load.p99_ms)}",
                    f"floor relay {ms(floor_cpu)}/req (c16); user-info {rps(base.rps)}, p50 {ms(base.p50_ms)}",
                    f"{ratio:.2f}x the floor's CPU; {load.rps / base.rps:.3f}x req/s; {load.errors} err",
                    f"<= {READ_CPU_FLOOR_RATIO}x the floor, 0 err",
                    ratio <= READ_CPU_FLOOR_RATIO and load.errors == 0,
                )
            )


# --- main -----------------------------------------------------------------------------------

# in run order
STEPS = ("relay", "paced", "as-started", "slow", "streaming", "fanout", "shared", "reads", "fanout-memory")


def describe_checkout() -> str:
    """The commit measured, and whether the working tree differs from it."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10)
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench")
    return commit + (" + uncommitted changes" if dirty else "")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def machine() -> str:
    """What the figures were measured on: CPU model, cores, kernel."""
    return f"{os.cpu_count()} x {cpu_model()}, Linux {os.uname().release}"


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the Eventory proxy against the fake Eventory.")
    # wrk takes whole seconds only.
    parser.add_argument(
        "--seconds",
        type=int,
        default=4,
        help="length of the longer wrk runs, whole seconds (default 4; the relay ratios' turns are 1 s)",
    )
    parser.add_argument("--download-mb", type=int, default=200, help="size of the streamed download (default 200)")
    parser.add_argument(
        "--backend-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the backend, for experiments (e.g. BACKEND_THREADS=32)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        metavar="SECONDS",
        help="at most this long in all, wait for other processes to leave the CPUs alone "
        "before each measurement (default 60)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=STEPS,
        metavar="STEP",
        help=f"run only this step after the set-up (repeatable; one of {', '.join(STEPS)}); by default all run",
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (backend log, database)")
    args = parser.parse_args()

    if sys.platform != "linux":
        sys.exit("bench/run.py reads /proc to measure the server; run it on Linux.")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed; on Debian/Ubuntu: apt-get install -y wrk")
    extra_env = dict(item.split("=", 1) for item in args.backend_env)
    Noise.wait_budget = args.quiet_wait
    # SIGTERM, and SIGINT even where a shell started us ignoring it, clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)

    report = Report()
    workdir = Path(tempfile.mkdtemp(prefix="eventory-bench-"))
    servers = Noise.servers
    try:
        fake = start_fake(max_seconds=900)
        servers.append(fake)
        # As the README starts it: `python wsgi.py`, nothing pinned from outside.
        backend = start_backend(workdir / "backend", fake.url, extra_env)
        servers.append(backend)
        backend_cpus = cpus_of(backend)
        threads = int(extra_env.get("BACKEND_THREADS", THREADS))
        floor = start_floor(fake.url, backend_cpus, threads)  # the same CPUs, so the ratios compare like with like
        servers.append(floor)
        wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split()[1]
        report.step(
            f"checkout {describe_checkout()}; {machine()}; load average {os.getloadavg()[0]:.2f}; wrk {wrk_version}; "
            f"python {sys.version.split()[0]}; the backend keeps itself to CPUs {sorted(backend_cpus)}, the floor "
            f"is pinned there" + (f"; backend env {extra_env}" if extra_env else "")
        )
        report.step(
            f"fake Eventory {fake.url} (pid {fake.pid}); floor {floor.url} (pid {floor.pid}); "
            f"backend {backend.url} (pid {backend.pid})"
        )
        setup = set_up(backend, fake)
        floored = call(floor.url, "GET", "/eventory/jobs/list", headers=setup.floor_headers)
        direct = call(fake.url, "GET", "/jobs/list", headers=setup.direct_headers)
        if (floored.status, floored.body) != (direct.status, direct.body) or direct.status != 200:
            raise RuntimeError(f"the floor does not answer like the fake: {floored.status} {floored.body[:200]!r}")
        steps = set(args.only or STEPS)
        if "relay" in steps:
            relay_cost(report, backend, floor, fake, setup, args.seconds)
        if "paced" in steps:
            paced(report, backend, floor, setup)
        if "as-started" in steps:
            pinned = start_backend(workdir / "pinned", fake.url, extra_env, backend_cpus, name="pinned backend")
            servers.append(pinned)
            try:
                as_started(report, backend, pinned, setup, set_up(pinned, fake), args.seconds)
            finally:
                pinned.stop()
                servers.remove(pinned)
        if "slow" in steps:
            slow_upstream(report, backend, floor, fake, setup, args.seconds)
        if "streaming" in steps:
            streaming(report, backend, fake, setup, args.download_mb, rounds=5)
        if "fanout" in steps:
            fan_out(report, backend, fake, setup, calls=5)
        if "shared" in steps:
            shared_reads(report, backend, fake, setup)
        if "reads" in steps:
            reads(report, backend, floor, fake, setup, max(2, args.seconds - 1))
        stopped = False
        # Last: the memory it takes may stay with the process, and if it has to stop the backend
        # nothing else needs it.
        if "fanout-memory" in steps:
            stopped = fan_out_memory(report, backend, fake, setup)
        if not backend.alive() and not stopped:
            raise RuntimeError("the backend died during the run")
        queued = backend.log.read_text(errors="replace").count("Task queue depth") if backend.log else 0
        report.step(
            f"done; waitress logged 'Task queue depth' (all threads busy) {queued} times"
            + (f"; backend log {backend.log}" if args.keep else "")
        )
    finally:
        for server in reversed(servers):
            server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(report.table())
    failed = [row.figure for row in report.rows if row.ok is False]
    print(
        f"\n{len(failed)} of {sum(row.ok is not None for row in report.rows)} targets failed"
        + (": " + "; ".join(failed) if failed else "")
    )
    if Noise.samples:
        mean, worst = statistics.mean(Noise.samples), max(Noise.samples)
        print(
            f"other processes used {mean:.2f} CPU cores on average during the load runs (worst {worst:.2f})"
            + (
                "; the machine was not quiet, so CPU and latency figures are inflated: run again when it is"
                if mean > NOISY_CORES
                else ""
            )
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in report.rows], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
