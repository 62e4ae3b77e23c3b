"""The refresh sidecar's probes and counters on a loopback HTTP port (``--health-port``).

- ``GET /readyz``: 200 once the first complete set is written, else 503.
- ``GET /livez``: 200 while the loop is alive (its heartbeat is recent) and its last
  successful refresh is within the staleness bound; 503 otherwise, with one line per
  store saying what failed last. A store outage longer than the bound makes ``/livez``
  fail; the files on disk stay the last good set either way.
- ``GET /metrics``: Prometheus text format (version 0.0.4): counters of refresh
  cycles, changed secrets, publishes, failures by store and reason, and the time of
  the last success.

The server is the standard library's ``http.server`` in a daemon thread, bound to
127.0.0.1 unless told otherwise: probes come from the kubelet on the pod's own
network namespace, and nothing here is meant for other hosts. No body ever carries
a secret value or a secret's name beyond what the config shows.

>>> state = HealthState(stale_after=90)
>>> state.metrics.inc("secretsboot_refresh_cycles_total")
>>> "secretsboot_refresh_cycles_total 1" in state.metrics.render()
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

HELP = {
    "secretsboot_refresh_cycles_total": "Refresh cycles run.",
    "secretsboot_refresh_changes_total": "Secrets whose value changed.",
    "secretsboot_refresh_publishes_total": "Changed sets published (one atomic swap each).",
    "secretsboot_refresh_deleted_total": "Secrets found deleted in every source.",
    "secretsboot_refresh_failures_total": "Failed store requests, by store and reason.",
    "secretsboot_refresh_token_renewals_total": "Tokens or leases renewed or re-acquired.",
    "secretsboot_refresh_last_success_timestamp_seconds": "Unix time of the last good cycle.",
    "secretsboot_refresh_ready": "1 once the first complete set is written.",
}
_GAUGES = {"secretsboot_refresh_last_success_timestamp_seconds", "secretsboot_refresh_ready"}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters and gauges keyed by ``(name, labels)``; thread-safe; rendered as text."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()
        for name in HELP:
            if name != "secretsboot_refresh_failures_total":
                self._values[(name, ())] = 0.0

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] = value

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> str:
        """The Prometheus text exposition format."""
        with self._lock:
            items = sorted(self._values.items())
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in items:
            if name not in seen:
                seen.add(name)
                kind = "gauge" if name in _GAUGES else "counter"
                lines.append(f"# HELP {name} {HELP.get(name, name)}")
                lines.append(f"# TYPE {name} {kind}")
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            shown = f"{value:.3f}" if value != int(value) else str(int(value))
            lines.append(f"{name}{{{label_text}}} {shown}" if labels else f"{name} {shown}")
        return "\n".join(lines) + "\n"


class HealthState:
    """What the probes report; the refresh loop updates it, the HTTP thread reads it."""

    def __init__(self, stale_after: float) -> None:
        self.stale_after = stale_after
        self.metrics = Metrics()
        self._lock = threading.Lock()
        self.ready = False
        self.last_success: float | None = None  # time.monotonic()
        self.heartbeat = time.monotonic()
        self.heartbeat_bound = stale_after
        self.failing: dict[str, str] = {}  # store -> one line about its last failure
        #: called when the process is asked to stop (the server starts shutting down)
        self.on_stop: Callable[[], None] = lambda: None

    def mark_ready(self) -> None:
        with self._lock:
            self.ready = True
            now = time.monotonic()
            self.last_success = now
            self.heartbeat = now
        self.metrics.set("secretsboot_refresh_ready", 1)
        self.metrics.set("secretsboot_refresh_last_success_timestamp_seconds", time.time())

    def beat(self) -> None:
        """The loop is alive (called every wake-up, busy or idle)."""
        with self._lock:
            self.heartbeat = time.monotonic()

    def success(self) -> None:
        with self._lock:
            now = time.monotonic()
            self.last_success = now
            self.heartbeat = now
            self.failing.clear()
        self.metrics.set("secretsboot_refresh_last_success_timestamp_seconds", time.time())

    def failure(self, store: str, reason: str, line: str) -> None:
        self.metrics.inc("secretsboot_refresh_failures_total", store=store, reason=reason)
        with self._lock:
            self.failing[store] = line
            self.heartbeat = time.monotonic()

    def readyz(self) -> tuple[int, str]:
        with self._lock:
            ready = self.ready
        return (200, "ok\n") if ready else (503, "first set not written yet\n")

    def livez(self) -> tuple[int, str]:
        now = time.monotonic()
        with self._lock:
            beat_age = now - self.heartbeat
            success_age = None if self.last_success is None else now - self.last_success
            failing = dict(self.failing)
        problems = []
        if beat_age > self.heartbeat_bound:
            problems.append(f"refresh loop silent for {beat_age:.0f}s")
        if success_age is not None and success_age > self.stale_after:
            problems.append(
                f"last successful refresh {success_age:.0f}s ago (bound {self.stale_after:.0f}s)"
            )
        lines = [f"{store}: {line}" for store, line in sorted(failing.items())]
        if problems:
            return 503, "\n".join(problems + lines) + "\n"
        return 200, "\n".join(["ok", *lines]) + "\n"


def serve(state: HealthState, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Start the probe server in a daemon thread; ``shutdown()`` then ``server_close()``
    stop it.

    >>> server = serve(HealthState(stale_after=60), 0)   # doctest: +SKIP
    >>> server.server_address[1]                         # doctest: +SKIP
    40123
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    routes: dict[str, Callable[[], tuple[int, str]]] = {
        "/readyz": state.readyz,
        "/livez": state.livez,
        "/healthz": state.livez,
        "/metrics": lambda: (200, state.metrics.render()),
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "secretsboot"
        sys_version = ""

        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            status, body = route() if route else (404, "not found\n")
            data = body.encode()
            self.send_response(status)
            kind = "text/plain; version=0.0.4" if self.path.startswith("/metrics") else "text/plain"
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would flood the log

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server((host, port), Handler)
    threading.Thread(
        target=server.serve_forever, args=(0.05,), name="secretsboot-health", daemon=True
    ).start()  # polls every 0.05 s: shutdown() on exit must not eat the 1 s budget
    return server
