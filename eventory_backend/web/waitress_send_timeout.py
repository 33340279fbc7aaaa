"""A workaround: a client that stops reading cannot hold a waitress thread.

Why: waitress's task thread hands each chunk of an answer to its channel, and once more than
`outbuf_high_watermark` bytes wait to be sent it blocks until the client has read some, with no
time limit; its idle sweep spares a channel whose request is still running. A few clients that
ask for a large relayed download and never read it would hold every thread, and the server would
answer nobody. This channel waits at most `send_timeout` seconds without progress, then abandons
the answer: the task ends (waitress's own ClientDisconnected), its thread is freed, the event is
logged, and the connection is closed from the server's loop.

It overrides waitress's `HTTPChannel._flush_outbufs_below_high_watermark`, keeping its body but
bounding each wait. Checked against waitress 3.0.2. tests/test_server.py starts the server
as `python wsgi.py` and has clients stop reading: if waitress stops calling this method (or
blocks elsewhere), that test fails.
"""

from __future__ import annotations

import logging
import time

from waitress.channel import ClientDisconnected, HTTPChannel
from waitress.server import BaseWSGIServer

log = logging.getLogger("eventory_backend.server")

POLL = 0.5  # seconds between looks at the output buffer while the client does not read


class SendTimeoutChannel(HTTPChannel):
    send_timeout: float = 30.0

    def _flush_outbufs_below_high_watermark(self):
        if self.total_outbufs_len <= self.adj.outbuf_high_watermark:
            return
        with self.outbuf_lock:
            (_, exception) = self._flush_exception(self._flush_some, do_close=False)
            if exception:
                # As waitress does: wake the main thread, let it decide (probably to close).
                self.server.pull_trigger()
                self.outbuf_lock.wait()
                return
            deadline = time.monotonic() + self.send_timeout
            while self.connected and self.total_outbufs_len > self.adj.outbuf_high_watermark:
                waiting = self.total_outbufs_len
                self.server.pull_trigger()
                self.outbuf_lock.wait(min(POLL, max(0.0, deadline - time.monotonic())))
                if self.total_outbufs_len < waiting:
                    deadline = time.monotonic() + self.send_timeout  # the client read some
                elif time.monotonic() >= deadline:
                    self._abandon()
                    raise ClientDisconnected

    def _abandon(self) -> None:
        request = self.requests[0] if self.requests else None
        log.warning(
            "client stopped reading; answer abandoned after %ss client=%s path=%s",
            self.send_timeout,
            self.addr[0] if isinstance(self.addr, tuple) else "-",
            "".join(char if char.isprintable() else "?" for char in getattr(request, "path", "-"))[:200],
        )
        self.connected = False  # write_soon refuses what the task still tries to send
        self.server.trigger.pull_trigger(self.handle_close)  # the socket belongs to the main loop


def install(server, send_timeout: float) -> None:
    """Make every listening server of `server` (what waitress.create_server returned) give its
    connections a channel that abandons an answer after `send_timeout` seconds without progress."""
    channel = type("SendTimeoutChannel", (SendTimeoutChannel,), {"send_timeout": float(send_timeout)})
    dispatchers = getattr(server, "map", None) or getattr(server, "_map", {})
    for dispatcher in list(dispatchers.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = channel
