"""The show's one web server, on aiohttp: HTTP and WebSocket on an asyncio loop of its own thread, never on
the render thread. Two ports, one server:

  OSCQuery port ([osc] oscquery_port, 9002)   the OSCQuery tree at every path, ?ATTR and ?HOST_INFO
                                               (oscquery.py), the WebSocket (LISTEN / IGNORE, values as
                                               binary OSC) on the same port, as HOST_INFO's WS_PORT says
  web port ([web] port, 9080)                  / the panel, /status the status page, /static/*, /api/*
                                               (info, tree, status, thumbnail.jpg), /ws the same WebSocket

Two ports because both want the root: an OSCQuery client reads the tree at /, a phone wants the panel
there. Every connection passes the show's allow-list and the connection limits when it is accepted, every
request the Host rule, every WebSocket and write the Origin rule (guard.py, docs/security.md); with a
[web] token, writing needs the token (?token=... once, then a cookie; or `Authorization: Bearer ...`)
while viewing stays open on the allowed network.

The tree is built once and kept: again only when values changed (at most once a frame: the main thread
hands the changed names over once a frame), the status figures came (once a second) or models and
presets on disk changed; LISTEN and GET read the kept one.

What the server knows of the show comes in through WebControl (surface.py) from the main thread:
changed addresses, the status figures, the thumbnail, the models and presets on disk. Values are read
from the store (locked), values set go into the OSC intake: the server never touches the show itself.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from aiohttp import web

from installation.control.osc.wire import build_dgram
from installation.control.web import oscquery
from installation.control.web.guard import SAFE_METHODS, Doorman, Rules
from installation.control.web.serving import ServingThread
from installation.control.web.session import Session, serve
from installation.core.params import Param, ParamStore
from installation.show.config import OSCQUERY_PORT, WEB_PORT

log = logging.getLogger("installation.web")

STATIC = Path(__file__).parent.parent / "static"  # control/static: package data of installation.control
COOKIE = "installation_token"
THUMB_WIDTH = 320
THUMB_KEEP_S = 5.0  # thumbnails are made while someone asked for one this recently
MAX_WEBSOCKETS = 128  # WebSocket clients at once (panels and OSCQuery clients)


@dataclass
class WebSettings:
    host: str = "0.0.0.0"
    port: int = WEB_PORT  # the panel; 0: off
    oscquery_port: int = OSCQUERY_PORT  # 0: off
    token: str = ""
    thumbnail: bool = True
    name: str = "installation"
    origins: list[str] = field(default_factory=list)  # other pages that may steer the show ([web] origins)


@dataclass
class Hooks:
    """What the server may do to the show: hand OSC over, ask the gate, count."""

    intake: Callable[[bytes], None]  # an OSC packet into the same path as a UDP datagram
    allowed: Callable[[str], bool]  # the allow-list (counts and names a refused sender)
    write_refusal: Callable[[str], str]  # why a protected write is refused here, or ""
    reject: Callable[[str, str, str], None]  # count a refused message (reason, address, detail)
    osc_port: Callable[[], int] = lambda: 0
    writes: bool = True
    count: Callable[[str], None] = lambda name: None  # the show's Stats: web_* in the stats JSON
    counters: Counter[str] = field(default_factory=Counter)


class WebServer:
    """Serves OSCQuery, the panel and the status page, on a ServingThread it owns (serving.py). Its public
    methods run on that loop unless they say otherwise; `call()` is how another thread gets something done
    there."""

    def __init__(self, settings: WebSettings, store: ParamStore, hooks: Hooks) -> None:
        self.doorman = Doorman(hooks.allowed, self._refused_connection)
        self.serving = ServingThread(settings.host, self.doorman, self._end_sessions)
        self.rules = Rules(settings.host, settings.origins, lambda: self.ports.values())
        self.settings = settings
        self.store = store
        self.registry = store.registry
        self.hooks = hooks
        self.counters = hooks.counters
        self.by_address = {p.address: p for p in self.registry.values()}
        self.sessions: set[Session] = set()
        self.status: dict[str, Any] = {}
        self.status_osc: dict[str, Any] = {}
        self.vals: dict[str, list[Any]] = {}
        self._kept: dict[str, Any] | None = None
        self._under: dict[str, list[str]] = {}  # LISTEN path -> the methods at or below it, for this shape
        self._shape = oscquery.shape(self.tree())
        self.thumb: bytes | None = None
        self.thumb_wanted_until = 0.0  # monotonic; read by the main thread
        self._static = {p.name: p.read_bytes() for p in STATIC.iterdir() if p.is_file()}
        self.serving.serve([("web", settings.port, self._web_app()),
                            ("oscquery", settings.oscquery_port, self._oscquery_app())])

    @property
    def ports(self) -> dict[str, int]:
        """What -> port, once bound ("web", "oscquery")."""
        return self.serving.ports

    @property
    def error(self) -> str:
        """Why a port is not listening, for the HUD; "" when all are."""
        return self.serving.error

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Any thread: run fn(*args) on the server's loop soon."""
        self.serving.call(fn, *args)

    def close(self) -> None:
        self.serving.close()

    def _end_sessions(self) -> None:
        """On the loop, before the apps are cleaned up: the WebSockets the runners would wait for."""
        for s in list(self.sessions):
            s.closed = True
            if s.transport is not None:
                s.transport.abort()

    # ---- the apps ------------------------------------------------------------------------------------
    @web.middleware
    async def _gate(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        """The sender passed the allow-list at accept (guard.Doorman); here the Host and Origin rules."""
        if not self.rules.host_ok(request.headers.get("Host")):
            self.refused_request("host", f"Host {request.headers.get('Host', '')[:80]!r}")
            return self._json({"error": "this Host is not this machine: use its address or name"}, 403)
        steering = request.method not in SAFE_METHODS or request.headers.get("Upgrade", "").lower() == "websocket"
        if steering and not self.rules.origin_ok(request.headers.get("Origin")):
            self.refused_request("origin", f"Origin {request.headers.get('Origin', '')[:80]!r}")
            return self._json({"error": "a page from another origin may not steer the show (see [web] origins)"},
                              403)
        result: web.StreamResponse = await handler(request)
        return result

    def refused_request(self, reason: str, detail: str) -> None:
        first = not self.counters[f"refused {reason}"]
        self.counters[f"refused {reason}"] += 1
        self.hooks.count("web_refused")
        if first:  # once per reason: a page that keeps trying must not fill the log
            log.warning("web: refused a request (%s); further ones are counted in /api/status", detail)

    def _refused_connection(self, reason: str) -> None:
        self.counters[f"refused {reason}"] += 1
        if reason != "sender not allowed":  # the allow-list counts those itself (osc_refused_senders)
            self.hooks.count("web_connections_refused")

    def _oscquery_app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/{path:.*}", self._oscquery)
        return app

    def _web_app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/", self._page("panel.html"))
        app.router.add_get("/status", self._page("status.html"))
        app.router.add_get("/static/{name}", self._file)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/api/info", self._info)
        app.router.add_get("/api/tree", self._tree)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/thumbnail.jpg", self._thumbnail)
        return app

    # ---- OSCQuery ------------------------------------------------------------------------------------
    def tree(self) -> dict[str, Any]:
        """The kept tree, built again only after changed() / set_status() / set_vals()."""
        if self._kept is None:
            self._kept = oscquery.tree(self.registry, self.store.targets(), vals=self.vals, status=self.status_osc)
        return self._kept

    async def _oscquery(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        if request.query_string.split("&")[0].upper() == "HOST_INFO":
            return self._json(oscquery.host_info(self.settings.name, self.settings.host, self.hooks.osc_port(),
                                                 self.ports.get("oscquery", self.settings.oscquery_port)))
        code, body = oscquery.answer(self.tree(), request.path, request.query_string)
        if body is None:
            return web.Response(status=code)
        return self._json(body, code)

    @staticmethod
    def _json(body: Any, status: int = 200) -> web.Response:
        return web.Response(body=json.dumps(body), status=status, content_type="application/json")

    def addresses_under(self, path: str) -> list[str]:
        """The methods at or below an OSC path (LISTEN on a container listens to all of it)."""
        if path in self.by_address:
            return [path]
        if path not in self._under:
            node = oscquery.find(self.tree(), path)
            if node is None:
                return []
            self._under[path] = [p for p, attrs in oscquery.shape(node).items() if "TYPE" in attrs]
        return self._under[path]

    def param(self, address: str) -> Param | None:
        return self.by_address.get(address)

    def write_refusal(self, name: str) -> str:
        return self.hooks.write_refusal(name)

    def intake(self, data: bytes) -> None:
        self.hooks.intake(data)

    def refused(self, reason: str, address: str, detail: str) -> None:
        self.counters[f"refused {reason}"] += 1
        self.hooks.count("web_refused")
        self.hooks.reject(reason, address, f"(web) {detail}")

    # ---- the WebSocket -------------------------------------------------------------------------------
    def can_write(self, request: web.Request) -> bool:
        """The token, from wherever a client can carry it: ?token= (the WebSocket's URL), the panel's cookie,
        or an `Authorization: Bearer` header. Compared in constant time."""
        token = self.settings.token
        if not token:
            return True
        bearer = request.headers.get("Authorization", "")
        given = (request.query.get("token") or request.cookies.get(COOKIE)
                 or (bearer[7:].strip() if bearer[:7].lower() == "bearer " else ""))
        return hmac.compare_digest(given.encode(), token.encode())

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if len(self.sessions) >= MAX_WEBSOCKETS:
            self.refused_request("too many websockets", f"{MAX_WEBSOCKETS} WebSocket clients already")
            return self._json({"error": f"the show serves {MAX_WEBSOCKETS} WebSocket clients at most"}, 503)
        return await serve(self, request, self.can_write(request), self._opened, self._closed)

    def _opened(self, s: Session) -> None:
        self.sessions.add(s)
        self.counters["connections"] += 1
        self.hooks.count("web_connections")

    def _closed(self, s: Session) -> None:
        self.sessions.discard(s)

    def client_dropped(self, s: Session, why: str) -> None:
        self.sessions.discard(s)
        self.counters["clients dropped"] += 1
        self.hooks.count("web_clients_dropped")
        log.warning("web client %s dropped: %s", s.peer, why)

    def changed(self, names: list[str]) -> None:
        """The main thread's changes of one frame: the kept tree is stale, listeners hear the new values."""
        self._kept = None
        self.push(names)

    def push(self, names: list[str]) -> None:
        """Changed parameters: their values as OSC (the type the tree says) to every client listening."""
        if not self.sessions:
            return
        values = self.store.targets()
        for name in names:
            p = self.registry.get(name)
            if p is None or p.kind == "trigger" or name not in values:
                continue
            dgram = build_dgram(p.address, oscquery.wire_value(p, values[name]))
            for s in self.sessions:
                s.offer(p.address, dgram)

    def push_dgrams(self, dgrams: list[bytes]) -> None:
        for d in dgrams:
            address = d[:d.index(b"\0")].decode()
            for s in self.sessions:
                s.offer(address, d)

    def send_current(self, s: Session) -> None:
        self.push([a.lstrip("/") for a in s.listening if a.lstrip("/") in self.registry])

    # ---- what the main thread hands over -------------------------------------------------------------
    def set_status(self, status: dict[str, Any], osc: dict[str, Any], dgrams: list[bytes]) -> None:
        self.status, self.status_osc = status, osc
        self._kept = None
        self.push_dgrams(dgrams)

    def set_vals(self, vals: dict[str, list[Any]]) -> None:
        """The values some parameters take changed (models or presets on disk): the tree's new shape, told
        to every client as PATH_* notices."""
        self.vals = vals
        self._kept = None
        self._under = {}
        shape = oscquery.shape(self.tree())
        notices = oscquery.changes(self._shape, shape)
        self._shape = shape
        for n in notices:
            for s in self.sessions:
                s.notice(n)

    def set_thumbnail(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 70])
        if ok:
            self.thumb = jpg.tobytes()

    # ---- pages ---------------------------------------------------------------------------------------
    def _page(self, name: str) -> Callable[[web.Request], Any]:
        async def page(request: web.Request) -> web.Response:
            resp = web.Response(body=self._static[name], content_type="text/html", charset="utf-8",
                                headers={"Cache-Control": "no-cache"})
            given = request.query.get("token")
            if given and self.settings.token and hmac.compare_digest(given.encode(), self.settings.token.encode()):
                resp.set_cookie(COOKIE, given, max_age=30 * 86400, httponly=True, samesite="Strict")
            return resp
        return page

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = self._static.get(name)
        if body is None or name.endswith(".html"):
            raise web.HTTPNotFound()
        kind = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}.get(name.rsplit(".", 1)[-1],
                                                                                       "application/octet-stream")
        return web.Response(body=body, content_type=kind, headers={"Cache-Control": "no-cache"})

    async def _tree(self, request: web.Request) -> web.Response:
        return self._json(self.tree())

    async def _info(self, request: web.Request) -> web.Response:
        return self._json({"name": self.settings.name, "can_write": self.can_write(request),
                           "token_required": bool(self.settings.token), "writes": self.hooks.writes,
                           "thumbnail": self.settings.thumbnail, "osc_port": self.hooks.osc_port(),
                           "oscquery_port": self.ports.get("oscquery", 0)})

    async def _status(self, request: web.Request) -> web.Response:
        self.thumb_wanted_until = asyncio.get_running_loop().time() + THUMB_KEEP_S
        return self._json(self.status | {"web": self.summary()})

    async def _thumbnail(self, request: web.Request) -> web.Response:
        if not self.settings.thumbnail:
            return self._json({"error": "no thumbnail: this show keeps pictures of the room on the machine "
                                        "([web] thumbnail = false)"}, 403)
        self.thumb_wanted_until = asyncio.get_running_loop().time() + THUMB_KEEP_S
        if self.thumb is None:
            return web.Response(status=204)
        return web.Response(body=self.thumb, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def summary(self) -> dict[str, Any]:
        return {"clients": len(self.sessions), "ports": dict(self.ports), "tcp": self.doorman.summary(),
                **dict(self.counters)}
