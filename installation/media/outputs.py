"""The output stage: the presented picture sent on to other programs (NDI, a virtual camera).

Beside the screen and --record. The picture is read back from GL at most once a frame, and that one read
is shared by the recorder and every output (Show.view hands it over). Each output has its own thread and
a latest-wins slot: a slow receiver or a missing device drops stale pictures on that output only, and the
show never waits for it. Each output is switched live by its parameter /output/NAME/on; one that can't
open (no v4l2loopback, the NDI runtime missing) says why once, is retried every few seconds, and is never
a crash.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from installation.core.frames import LatestSlot, SlotClosed
from installation.core.params import Param, Registry

log = logging.getLogger("installation.outputs")

RETRY_S = 5.0  # an output that can't open is tried again this often


class OutputConfig(BaseModel):
    """One [[output]] table."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ndi", "virtual_camera"]
    name: str = ""  # the output's name in /output/NAME/on; default: its kind
    size: tuple[int, int] | None = None  # [width, height]; default: the picture as presented
    rate: float = Field(30.0, ge=0, le=240)  # at most this many pictures a second; 0: every presented one
    on: bool = True  # at the start; live: /output/NAME/on
    device: str = ""  # virtual_camera: /dev/videoN; default: the first v4l2loopback device

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9_-]+", v):
            raise ValueError(f"{v!r} can't be part of an address (expected letters, digits, _ and -, as in "
                             "/output/NAME/on)")
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not all(16 <= x <= 7680 for x in v):
            raise ValueError(f"{list(v)} is out of range (expected [width, height], each 16..7680)")
        return v

    @property
    def id(self) -> str:
        return self.name or self.kind


def output_params(outputs: list[OutputConfig]) -> list[Param]:
    """The live switch of each output, declared in the registry like every other value."""
    return [Param(f"output/{o.id}/on", "bool", o.on, persist=False,
                  description=f"send the picture to the {o.kind.replace('_', ' ')} output {o.id!r}")
            for o in outputs]


def declare_outputs(registry: Registry, outputs: list[OutputConfig], file: Path | None = None) -> None:
    """Add a show's output switches to its registry (before a store is made from it)."""
    from installation.core.errors import UserError

    seen: set[str] = set()
    for i, o in enumerate(outputs):
        if o.id in seen:
            raise UserError(f"two outputs are called {o.id!r}", file=file, key=f"output[{i}].name",
                            expected="a name of its own for each output")
        seen.add(o.id)
    registry.add(output_params(outputs))


class Sink(Protocol):
    """Where one output's pictures go. open() raises when the device or runtime isn't there."""

    def open(self) -> None: ...

    def send(self, rgb: np.ndarray, t_capture: float) -> None: ...

    def close(self) -> None: ...


class VirtualCamera:
    """A v4l2loopback device through pyvirtualcam: browsers and call tools see the show as a webcam."""

    def __init__(self, size: tuple[int, int], fps: float, device: str = "") -> None:
        self.size, self.fps, self.device = size, fps, device
        self.cam: Any = None
        self.name = device or "virtual camera"

    def open(self) -> None:
        import pyvirtualcam

        self.cam = pyvirtualcam.Camera(self.size[0], self.size[1], self.fps or 30.0, device=self.device or None,
                                       backend="v4l2loopback")
        self.name = self.cam.device

    def send(self, rgb: np.ndarray, t_capture: float) -> None:
        self.cam.send(np.ascontiguousarray(rgb))

    def close(self) -> None:
        if self.cam is not None:
            self.cam.close()
            self.cam = None


class Output:
    """One output: its own thread, fed through a latest-wins slot, reopening its sink after a failure."""

    def __init__(self, cfg: OutputConfig, sink: Sink, size: tuple[int, int],
                 on_fault: Callable[..., None] | None = None, count: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.param = f"output/{cfg.id}/on"
        self.sink = sink
        self.size = size
        self.interval = 1.0 / cfg.rate if cfg.rate else 0.0
        self.slot: LatestSlot[tuple[np.ndarray, float]] = LatestSlot(f"output {self.id}")
        self.sent = 0
        self.errors = 0
        self.error = ""
        self.opened = False
        self.t_offered = float("-inf")
        self.t_retry = 0.0  # while it can't open: no picture is read back for it until then (main thread)
        self.t_reopen = 0.0  # after a failure the thread itself waits this long before opening again
        self._on_fault = on_fault
        self._count = count  # Stats.count: the show's stats JSON carries output_NAME_sent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"output-{self.id}", daemon=True)
        self._thread.start()

    def due(self, now: float) -> bool:
        if not self.opened and now < self.t_retry:
            return False
        return now - self.t_offered >= self.interval * 0.95  # a frame early is not a frame late

    def offer(self, picture: np.ndarray, t_capture: float, now: float) -> None:
        self.t_offered = now
        if not self.opened:
            # This picture is the open's try: no more are read back for it until the open succeeds or the
            # retry comes due (an open can take a while; the main thread must not read back meanwhile).
            self.t_retry = now + RETRY_S
        self.slot.put((picture, t_capture))

    @property
    def dropped(self) -> int:
        return self.slot.dropped

    def _fault(self, message: str, exc: BaseException | None) -> None:
        if message == self.error:
            return  # the same failure again, at each retry: one fault for the whole spell
        self.errors += 1
        self.error = message
        if self._on_fault is not None:
            self._on_fault("output", f"{self.id}: {message}", exc=exc)
        else:
            log.warning("output %s: %s", self.id, message, exc_info=exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.slot.get(timeout=0.5)
            except SlotClosed:
                break
            if item is None:
                continue
            if not self.opened:
                if time.monotonic() < self.t_reopen:
                    continue  # still off: the picture is dropped, the show carries on
                try:
                    self.sink.open()
                    self.opened, self.error = True, ""
                    log.info("output %s: sending to %s", self.id, getattr(self.sink, "name", self.id))
                except Exception as e:  # no device, no runtime: said once (stats.fault), tried again later
                    self._fault(f"can't open: {str(e).strip() or type(e).__name__}", None)
                    self.t_retry = self.t_reopen = time.monotonic() + RETRY_S
                    continue
            picture, t_capture = item
            try:
                if picture.shape[1::-1] != self.size:
                    picture = cv2.resize(picture, self.size, interpolation=cv2.INTER_AREA)
                self.sink.send(picture, t_capture)
                self.sent += 1
                if self._count is not None:
                    self._count(f"output_{self.id}_sent")
            except Exception as e:  # a receiver gone, a device removed: reopened after a pause
                self._fault(f"send failed: {type(e).__name__}: {e}", e)
                self._close_sink()
                self.t_retry = self.t_reopen = time.monotonic() + RETRY_S
        self._close_sink()

    def _close_sink(self) -> None:
        self.opened = False
        try:
            self.sink.close()
        except Exception as e:
            log.debug("output %s close: %s", self.id, e)

    def close(self) -> None:
        self._stop.set()
        self.slot.close()
        self._thread.join(timeout=3.0)


def make_sink(cfg: OutputConfig, show_name: str, size: tuple[int, int]) -> Sink:
    if cfg.kind == "ndi":
        from installation.media.ndi import NdiSender

        # the sender is named after the show; a second NDI output adds its own name
        return NdiSender(show_name if not cfg.name or cfg.name == "ndi" else f"{show_name} {cfg.name}", cfg.rate)
    return VirtualCamera(size, cfg.rate, cfg.device)


class OutputStage:
    """Every output of a show. A part of the show (Show.parts): closed with the show, a HUD line each."""

    def __init__(self, show: Any, outputs: list[Output]) -> None:
        self.show = show
        self.outputs = outputs
        self.reads = 0

    def present(self, picture: np.ndarray | Callable[[], np.ndarray], t_capture: float) -> np.ndarray | None:
        """The main thread, after a picture was presented: `picture` is the frame's one readback, or how to
        make it when nobody read it yet (read only if an output is on and due). Returns the picture."""
        now = time.monotonic()
        snap = self.show.snapshot
        due = [o for o in self.outputs if snap.get(o.param, False) and o.due(now)]
        if not due:
            return picture if isinstance(picture, np.ndarray) else None
        if not isinstance(picture, np.ndarray):
            picture = picture()
            self.reads += 1
            self.show.stats.count("output_readbacks")  # read for the outputs alone: nobody else had
        for o in due:
            o.offer(picture, t_capture, now)
        return picture

    def update(self, show: Any) -> None:
        pass

    def hud(self, show: Any) -> list[str]:
        lines = []
        for o in self.outputs:
            state = ("on" if show.snapshot.get(o.param, False) else "off") + ("" if o.opened else " (not open)")
            lines.append(f"output {o.id} {state}  sent {o.sent}  dropped {o.dropped}"
                         + (f"  ! {o.error}" if o.error and not o.opened else ""))
        return lines

    def summary(self) -> dict[str, Any]:
        return {o.id: {"kind": o.cfg.kind, "sent": o.sent, "dropped": o.dropped, "errors": o.errors,
                       "error": o.error or None} for o in self.outputs}

    def close(self) -> None:
        for o in self.outputs:
            o.close()


def attach_outputs(show: Any) -> OutputStage | None:
    """The show's [[output]] tables as its output stage (Show.build, once the display is open)."""
    cfgs: list[OutputConfig] = getattr(show.cfg, "output", [])
    if not cfgs:
        return None
    outputs = []
    for c in cfgs:
        size = tuple(c.size) if c.size else tuple(show.display.size)
        outputs.append(Output(c, make_sink(c, show.cfg.name, size), size,  # type: ignore[arg-type]
                              on_fault=show.stats.fault, count=show.stats.count))
    stage = OutputStage(show, outputs)
    show.outputs = stage
    show.parts.append(stage)
    show.hud_lines.append(stage.hud)
    return stage


def list_virtual_cameras() -> tuple[list[str], str]:
    """v4l2loopback devices, and why there are none."""
    found = []
    for dev in sorted(Path("/sys/class/video4linux").glob("video*")) if Path("/sys/class/video4linux").is_dir() \
            else []:
        try:
            driver = (dev / "device" / "driver").resolve().name if (dev / "device" / "driver").exists() else ""
            name = (dev / "name").read_text().strip()
        except OSError:
            continue
        if "loopback" in driver.lower() or "loopback" in name.lower() or "v4l2loopback" in name.lower():
            found.append(f"/dev/{dev.name} ({name})")
    if found:
        return found, ""
    loaded = Path("/sys/module/v4l2loopback").exists()
    return [], ("v4l2loopback is loaded but made no device" if loaded else
                "the v4l2loopback kernel module is not loaded (sudo modprobe v4l2loopback exclusive_caps=1)")
