"""aiohttp applications served from an asyncio loop on a thread of their own, never the render thread: each
on its port, a port another program holds retried every RETRY_S with the reason kept for the HUD (net.BindRetry,
as the OSC server's). The web
server (server.py) owns one; `call()` is how another thread gets something done on the loop.

Every listening socket is handed the Doorman's protocol factory (guard.py): a connection is judged when
it is accepted, before aiohttp reads a byte of it. Idle and half-sent connections end at KEEPALIVE_S. A
descriptor shortage at accept (asyncio pauses accepting for a second) is counted and said once, never a
traceback a second."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from installation.control.net import BindRetry
from installation.control.web.guard import KEEPALIVE_S, LINGER_S, Doorman

log = logging.getLogger("installation.web")

RETRY_S = 2.0
SHUTDOWN_S = 0.5  # handlers still running this long after close() are cancelled: the show stops within 2 s


class ServingThread:
    """The loop, its thread and the listening ports (`ports`: what -> port, once bound; `error`: why not)."""

    def __init__(self, host: str, doorman: Doorman, before_stop: Callable[[], None] = lambda: None) -> None:
        self.host = host
        self.doorman = doorman
        self.before_stop = before_stop  # on the loop, before the apps are cleaned up: end what they wait for
        self.ports: dict[str, int] = {}
        self.binds: dict[str, BindRetry] = {}
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_fault)
        self._runners: list[web.AppRunner] = []
        self._servers: list[asyncio.Server] = []
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def error(self) -> str:
        """Why a port is not listening (the first such), for the HUD; "" when all are."""
        return next((b.error for b in self.binds.values() if b.error), "")

    def serve(self, apps: list[tuple[str, int, web.Application]], timeout: float = 10.0) -> None:
        """Start the thread and bind each (what, port, app) whose port is not 0; returns once bound or retrying."""
        self._thread = threading.Thread(target=self._run, args=(apps,), name="web", daemon=True)
        self._thread.start()
        self._started.wait(timeout)

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Any thread: run fn(*args) on the loop soon."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    # ---- the loop's thread ---------------------------------------------------------------------------
    def _loop_fault(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "out of system resource" in str(context.get("message", "")):
            self.doorman.short("accept() found no descriptor left")
            self.doorman.refused("descriptors short")
            return
        loop.default_exception_handler(context)

    def _run(self, apps: list[tuple[str, int, web.Application]]) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start(apps))
        self._started.set()
        self._loop.run_forever()
        self.before_stop()
        self._loop.run_until_complete(self._cleanup())
        self._loop.close()

    async def _start(self, apps: list[tuple[str, int, web.Application]]) -> None:
        for what, port, app in apps:
            if port:
                runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=KEEPALIVE_S,
                                       lingering_time=LINGER_S, shutdown_timeout=SHUTDOWN_S)
                await runner.setup()
                self._runners.append(runner)
                if not await self._bind(what, runner, port):
                    self._loop.create_task(self._retry(what, runner, port))

    async def _bind(self, what: str, runner: web.AppRunner, port: int) -> bool:
        bind = self.binds.setdefault(what, BindRetry(what, port, RETRY_S, log))
        try:
            server = await self._loop.create_server(self.doorman.factory(runner.server), self.host, port,
                                                    reuse_address=True)
        except OSError as e:
            bind.failed(e)
            return False
        self._servers.append(server)
        self.ports[what] = port
        bind.bound(port)
        return True

    async def _retry(self, what: str, runner: web.AppRunner, port: int) -> None:
        while not await self._bind(what, runner, port):
            await asyncio.sleep(RETRY_S)

    async def _cleanup(self) -> None:
        for server in self._servers:
            server.close()
        for runner in self._runners:
            await runner.cleanup()
