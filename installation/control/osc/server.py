"""The OSC input server: python-osc's BlockingOSCUDPServer on one receiver thread, *handed* an intake (as
python-osc hands its server a dispatcher) that judges and keeps each datagram, and retrying a busy port
with back-off (`RetryingServer`).

One thread, not ThreadingOSCUDPServer (a thread per datagram: a fader's 0.50 then 0.51 applied in either
order, and a flood becomes thousands of thread starts on a 2-core machine) nor asyncio (a loop for the
same single thread): datagrams are handled in arrival order at a bounded cost each."""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from installation.control.net import BindRetry
from installation.control.osc.intake import Intake

log = logging.getLogger("installation.osc")


class RetryingServer:
    """A socketserver server on its own thread; while its port is taken it says so and retries every
    `retry_s`, because exiting would loop a black screen under a restarting service.

    The first bind happens in the constructor, so the port (or the error) is known at once."""

    def __init__(self, what: str, port: int, make: Callable[[], socketserver.BaseServer], retry_s: float,
                 poll_s: float = 0.1) -> None:
        self.what = what
        self.make = make
        self.retry_s = retry_s
        self.poll_s = poll_s
        self.server: socketserver.BaseServer | None = None
        self.bind = BindRetry(what, port, retry_s, log)
        self._stop = threading.Event()
        self._bind()
        self._thread = threading.Thread(target=self._run, name=f"{what}-server".replace(" ", "-"), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.bind.port

    @property
    def error(self) -> str:
        return self.bind.error

    def _bind(self) -> bool:
        try:
            server = self.make()
        except OSError as e:
            self.bind.failed(e)
            return False
        self.server = server
        self.bind.bound(server.server_address[1])
        return True

    def _run(self) -> None:
        while self.server is None:
            if self._stop.wait(self.retry_s):
                return
            self._bind()
        srv = self.server
        srv.timeout = self.poll_s
        while not self._stop.is_set():
            try:
                srv.handle_request()
            except Exception as e:  # a server thread that dies leaves the show deaf: never
                log.error("%s: %s: %s", self.what, type(e).__name__, e)

    @property
    def listening(self) -> bool:
        return self.server is not None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        if self.server is not None:
            self.server.server_close()


class OscServer(BlockingOSCUDPServer):
    """python-osc's blocking server, every datagram handed to the intake (allow-list first, malformed ones
    counted) instead of silently dropped."""

    max_packet_size = 65536  # a datagram is at most this; the default 8 KiB would cut big bundles

    def __init__(self, address: tuple[str, int], intake: Intake) -> None:
        self.intake = intake
        super().__init__(address, Dispatcher())  # never consulted: finish_request hands datagrams to the intake

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return self.intake.sender_allowed(client_address[0])

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.intake.receive(request[0], client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.intake.counters.reject("malformed", "(error)", "the handler failed")
