"""Show files: one TOML file per show, validated before any window opens.

Every mistake becomes a UserError naming the file, the key path and what was expected (the CLI exits 2).
`SHOW` is a path, or a bare name meaning show_configs/NAME.toml. Paths inside a show are relative to it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from installation.core.errors import UserError
from installation.core.params import ParamError, Registry
from installation.core.paths import data_dir
from installation.media.outputs import OutputConfig, declare_outputs
from installation.show.config_errors import explain
from installation.show.governor import GovernorConfig
from installation.show.health import HealthConfig
from installation.show.schedule import ScheduleConfig

# a section another wing owns ([midi]: control/midi/bindings.py): its raw table, the registry and the file in,
# the checked section out (stored back on the ShowConfig), every mistake a UserError; handed in by app.load_show
SectionChecker = Callable[[Any, Registry, Path], Any]

# the default ports, said once: the show file's defaults, the flags' help, the address map, the web's settings
OSC_PORT = 9000  # OSC in (UDP)
FEEDBACK_PORT = 9001  # a feedback target named without a port
OSCQUERY_PORT = 9002  # OSCQuery's HTTP and WebSocket
WEB_PORT = 9080  # the panel and the status page

SLOTS = (1, 99)  # preset slots, in a show's [presets] and over OSC (control/presets.py)
SHOW_DIR = data_dir("show_configs")  # bare show names: the checkout's, or the installed package's


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    kind: Literal["camera", "video", "synthetic", "ndi"] = "camera"
    name: str = ""  # ndi: the sender's name, or a part of it ("MACHINE (name)" as NDI lists it)
    camera: int | str = Field(0, description="index, or a stable path such as /dev/v4l/by-id/...")
    video: Path | None = None
    loop: bool = True
    width: int = Field(1280, ge=16, le=7680)
    height: int = Field(720, ge=16, le=4320)
    fps: float = Field(30.0, gt=0, le=240)
    exposure: float | None = None  # None: leave the camera's automatic exposure on
    white_balance: float | None = None  # kelvin; None: automatic
    focus: float | None = None  # None: autofocus


class ModelConfig(_Strict):
    path: Path | None = None  # a model folder (model.onnx + model.toml) or a bare .onnx; None: camera only
    providers: str | list[str] = "auto"  # "auto", or e.g. ["cuda", "cpu"]
    then: list[Path] = Field(default_factory=list)  # chained models: each one repaints the one before
    # frames in flight on the CPU: "auto" is 2 where there are 2+ cores (each session then gets half of
    # them), 1 on a GPU, with --lockstep, chained models or a crossfade. 1: the lowest latency per frame.
    workers: Literal["auto"] | Annotated[int, Field(ge=1, le=8)] = "auto"
    # who runs the graph: "onnx" (ONNX Runtime), "torch" (PyTorch on CUDA: the GPU frame path), "auto"
    # (INSTALLATION_BACKEND if set, else onnx)
    backend: Literal["auto", "onnx", "torch"] = "auto"
    # which graph of the model folder: "auto" (its int8 twin from `installation quantize` where ONNX Runtime
    # runs on the CPU, else model.onnx), "fp32" (always model.onnx), "int8" (the twin, or the show is refused)
    precision: Literal["auto", "fp32", "int8"] = "auto"


class RenderConfig(_Strict):
    fullscreen: bool = True
    screen: int = Field(0, ge=0)
    vsync: bool = True
    width: int = Field(1280, ge=16, le=7680)  # the window, or the offscreen target when headless
    height: int = Field(720, ge=16, le=4320)
    content_size: int = Field(720, ge=64, le=4096)  # the square composite's resolution


class OscConfig(_Strict):
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = Field(OSC_PORT, ge=0, le=65535)
    feedback: list[str] = Field(default_factory=list)  # "HOST:PORT" targets for mirrored values
    feedback_to_sender: bool = False
    # senders that may control the show (addresses or networks); empty: loopback and the private and
    # link-local ranges; ["any"]: anyone. OSCQuery's HTTP follows the same rule. This and feedback are read
    # by the [osc] section checker (control/access.py), the parser the running show uses
    allow: list[str] = Field(default_factory=list)
    # /preset/save, /show/grab: None is on for `rehearse`, off for `run`; grabs need an explicit true
    allow_writes: bool | None = None
    oscquery_port: int = Field(OSCQUERY_PORT, ge=0, le=65535)  # 0: off
    # OSC over UDP, which can't carry [web] token: unset, on without a token and off with one (docs/security.md)
    udp: bool | None = None


class WebConfig(_Strict):
    """[web]: the control room in a browser (control/web/server.py): the panel, the status page, OSCQuery's
    WebSocket. It listens on [osc] host, follows [osc] allow and is off with OSC."""

    port: int = Field(WEB_PORT, ge=0, le=65535)  # the panel and the status page; 0: off
    # when set, changing values from the web needs ?token=... once (then a cookie); viewing stays open
    token: str = ""
    # the status page's live thumbnail of the output (1-2 a second, small JPEG); false: no picture of the
    # room leaves the machine
    thumbnail: bool = True
    # other pages that may steer the show from a browser (an artist's own panel elsewhere), as origins:
    # "http://10.0.0.5:8000"; the show's own pages always may (docs/security.md)
    origins: list[str] = Field(default_factory=list)

    @field_validator("origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        import urllib.parse

        for item in v:
            try:
                parts = urllib.parse.urlsplit(item)
                parts.port  # noqa: B018  (raises on a port that is no number or out of range)
            except ValueError:
                parts = None
            if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
                    or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username):
                raise ValueError(f"{item!r} is not an origin like \"http://10.0.0.5:8000\" (http or https, a host, "
                                 "a port if not the default; no path)")
        return v

    @field_validator("token")
    @classmethod
    def _token(cls, v: str) -> str:
        import re

        if v and not re.fullmatch(r"[A-Za-z0-9._~-]{8,128}", v):
            raise ValueError("a token is 8 to 128 letters, digits or . _ ~ - (it travels in a URL)")
        return v


class KeysConfig(_Strict):
    # what keys need in a fullscreen `run` (a visitor may reach the keyboard): "ctrl+alt", "ctrl",
    # "alt+shift", ... or "none" (plain keys, for a rehearsal machine)
    modifier: str = "ctrl+alt"

    @field_validator("modifier")
    @classmethod
    def _modifier(cls, v: str) -> str:
        from installation.show.keys import parse_modifier

        parse_modifier(v)
        return v


class StateConfig(_Strict):
    restore: bool = True  # restore the last live values at start, so a power cut loses no tuning


class ShowConfig(_Strict):
    name: str = ""
    description: str = ""
    source: SourceConfig = Field(default_factory=SourceConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    render: RenderConfig = Field(default_factory=RenderConfig)
    osc: OscConfig = Field(default_factory=OscConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    web: WebConfig = Field(default_factory=WebConfig)  # the panel and status page in a browser
    keys: KeysConfig = Field(default_factory=KeysConfig)  # kiosk keys in a fullscreen `run`
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)  # opening hours, attract look
    presets: dict[str, dict[str, Any]] = Field(default_factory=dict)  # [presets.N]: slots the show ships with
    health: HealthConfig = Field(default_factory=HealthConfig)  # heartbeat, model retry
    # the frame-budget governor (show/governor.py): [governor] table, or governor = "off" / "auto"
    governor: GovernorConfig = Field(default_factory=GovernorConfig)
    midi: Any = None  # MIDI in: checked by the [midi] section checker (control/midi/bindings.py); no table: no MIDI
    output: list[OutputConfig] = Field(default_factory=list)  # [[output]]: NDI, virtual camera (outputs.py)
    params: dict[str, Any] = Field(default_factory=dict)  # live parameter defaults: "pre/blur" = 2, or [params.pre]

    path: Path | None = Field(None, exclude=True)  # where it was read from

    @field_validator("governor", mode="before")
    @classmethod
    def _governor_word(cls, v: Any) -> Any:
        return {"mode": v} if isinstance(v, str) else v  # governor = "off": short for [governor] mode = "off"

    def resolve_paths(self, base: Path) -> None:
        if self.source.video is not None and not self.source.video.is_absolute():
            self.source.video = (base / self.source.video).resolve()
        if self.model.path is not None and not self.model.path.is_absolute():
            self.model.path = (base / self.model.path).resolve()
        self.model.then = [p if p.is_absolute() else (base / p).resolve() for p in self.model.then]


def find_show(show: str | Path | None) -> Path:
    """A path as given, or a bare name meaning show_configs/NAME.toml (default: 'default')."""
    if show is None:
        show = "default"
    p = Path(show)
    if p.suffix == ".toml" or p.exists() or len(p.parts) > 1:
        return p
    for base in (Path.cwd() / "show_configs", SHOW_DIR):
        cand = base / f"{show}.toml"
        if cand.is_file():
            return cand
    return SHOW_DIR / f"{show}.toml"


def flatten_params(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"pre": {"blur": 2}} and {"pre/blur": 2} both become {"pre/blur": 2}."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        name = f"{prefix}/{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten_params(v, name))
        else:
            out[name] = v
    return out


def check_params(values: dict[str, Any], registry: Registry, file: Path | None,
                 prefix: str = "params") -> dict[str, Any]:
    """Show-file parameter values, checked strictly: unknown names and out-of-range values are errors."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        key = f"{prefix}." + name.replace("/", ".")
        if name not in registry:
            raise UserError(f"unknown parameter {name!r}", file=file, key=key,
                            expected="a registered parameter (list them with `installation osc-map`)")
        p = registry[name]
        if p.kind == "trigger":
            raise UserError(f"{name} is a trigger, not a value", file=file, key=key)
        try:
            v = p.coerce(value)
        except ParamError as e:
            raise UserError(str(e), file=file, key=key, expected=f"{p.kind} in {p.describe_range()}") from None
        if p.kind in ("float", "int") and isinstance(value, (int, float)) and v != value:
            raise UserError(f"{value!r} is out of range", file=file, key=key,
                            expected=f"{p.kind} in {p.describe_range()}")
        checked[p.name] = v
    return checked


def check_presets(presets: dict[str, Any], registry: Registry, file: Path | None) -> dict[str, Any]:
    """[presets.N] tables: N a slot number, each table parameter values (model/select may name a model)."""
    out: dict[str, Any] = {}
    for slot, values in presets.items():
        if not slot.isdigit() or not SLOTS[0] <= int(slot) <= SLOTS[1]:
            raise UserError(f"preset slot {slot!r}", file=file, key=f"presets.{slot}",
                            expected=f"a slot number {SLOTS[0]}..{SLOTS[1]}")
        if not isinstance(values, dict):
            raise UserError("a preset is a table of parameter values", file=file, key=f"presets.{slot}")
        out[str(int(slot))] = check_params(flatten_params(values), registry, file, f"presets.{slot}")
    return out


def load_show(show: str | Path | None, registry: Registry,
              sections: Mapping[str, SectionChecker] | None = None) -> ShowConfig:
    """Read and validate a show file against a registry (app.load_show: every wing's parameters and the
    sections other wings own, by name: {"midi": ...}). Raises UserError for any mistake in it."""
    path = find_show(show)
    if not path.is_file():
        raise UserError("show file not found", file=path, expected="a path to a .toml file or a name in show_configs/")
    try:
        raw = tomllib.loads(path.read_text())
    except UnicodeDecodeError:
        raise UserError("not a text file", file=path, expected="UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"TOML syntax error: {e}", file=path) from None
    except OSError as e:
        raise UserError(f"can't read: {e.strerror}", file=path) from None
    try:
        cfg = ShowConfig.model_validate(raw)
    except ValidationError as e:
        raise explain(e, path, ShowConfig) from None
    cfg.path = path.resolve()
    cfg.resolve_paths(path.resolve().parent)
    if not cfg.name:
        cfg.name = path.stem
    if cfg.source.kind == "video" and cfg.source.video is None:
        raise UserError("a video source needs a file", file=path, key="source.video", expected="a path to a video")
    if cfg.source.kind == "ndi" and not cfg.source.name.strip():
        raise UserError("an NDI source needs a name", file=path, key="source.name", expected="an NDI sender's name")
    declare_outputs(registry, cfg.output, path)  # /output/NAME/on, so [params] and [midi.map] may name them
    for name, check in (sections or {}).items():
        raw_section = getattr(cfg, name)
        if raw_section is not None:
            setattr(cfg, name, check(raw_section, registry, path))
    cfg.params = check_params(flatten_params(cfg.params), registry, path)
    for look, values in cfg.schedule.looks.items():
        cfg.schedule.looks[look] = check_params(flatten_params(values), registry, path, f"schedule.looks.{look}")
    cfg.presets = check_presets(cfg.presets, registry, path)
    for key, look in cfg.schedule.unknown_looks():
        raise UserError(f"unknown look {look!r}", file=path, key=f"schedule.{key}",
                        expected=f"one of {', '.join(cfg.schedule.known_looks())}, or a [schedule.looks.{look}] table")
    return cfg
