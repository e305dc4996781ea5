"""Control you can trust on a gallery network, judged from outside: real UDP and HTTP from real loopback
addresses, the real command, its recording, its stats file, its log and the files it leaves."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from installation.control.osc.wire import build_dgram
from tests.conftest import SYNTHETIC, small_show
from tests.scenarios.conftest import flat_model, frames_of, free_tcp_port, free_udp_port, run_cli, start_cli


def _centre(frame_bgr: np.ndarray) -> float:
    h, w = frame_bgr.shape[:2]
    return float(frame_bgr[h // 2 - 10:h // 2 + 10, w // 2 - 10:w // 2 + 10].mean())


def _send_from(source_ip: str, port: int, address: str, *args: object) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source_ip, 0))
        s.sendto(build_dgram(address, *args), ("127.0.0.1", port))


def _get_from(source_ip: str, port: int, path: str) -> int:
    """The answer's status, or 0 when the connection is closed unanswered (a sender refused at accept)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source_ip, 0))
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
        return 0
    finally:
        conn.close()


def _show(tmp_path: Path, osc: str, name: str = "expo") -> Path:
    model = flat_model(tmp_path / "models" / "grey", (200, 200, 200))
    return small_show(tmp_path, name=name, model=model, source=SYNTHETIC + "\nfps = 30",
                      osc=f'host = "127.0.0.1"\n{osc}')


def _play(tmp_path: Path, command: str, show: Path, port: int, then: object, *extra: object,
          seconds: float = 5) -> tuple[list[np.ndarray], dict, str]:
    """Play `show`, call then() once OSC listens, return the recording, the stats and the log."""
    out, stats = tmp_path / f"{command}.mp4", tmp_path / f"{command}.json"
    proc = start_cli([command, show, "--headless", "--seconds", seconds, "--osc-port", port, "--record", out,
                      "--stats", stats, *extra], tmp_path)
    try:
        assert proc.stdout is not None
        assert "playing" in proc.stdout.readline()  # built: OSC and OSCQuery are listening
        then()  # type: ignore[operator]
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    return frames_of(out), json.loads(stats.read_text()), err


def test_senders_outside_the_allow_list_are_refused_counted_and_named_once(tmp_path: Path) -> None:
    port, qport = free_udp_port(), free_tcp_port()
    show = _show(tmp_path, f'allow = ["127.0.0.2/32"]\noscquery_port = {qport}')
    http_status: dict[str, int] = {}

    def then() -> None:
        time.sleep(0.5)
        for _ in range(3):  # from 127.0.0.1: not on the list; blackout would leave every pixel black
            _send_from("127.0.0.1", port, "/show/blackout", 1)
        http_status["127.0.0.1"] = _get_from("127.0.0.1", qport, "/colour/brightness")
        http_status["127.0.0.2"] = _get_from("127.0.0.2", qport, "/colour/brightness")
        _send_from("127.0.0.2", port, "/colour/brightness", 0.25)  # on the list: accepted

    frames, stats, log = _play(tmp_path, "rehearse", show, port, then)
    assert http_status == {"127.0.0.1": 0, "127.0.0.2": 200}, "OSCQuery follows the same allow-list (closed at accept)"
    last = _centre(frames[-1])
    assert 30 < last < 70, f"the allowed sender darkened the picture, the refused one did not black it out: {last}"
    assert stats["counters"]["osc_refused_senders"] == 4, stats["counters"]  # 3 datagrams + 1 HTTP request
    named = [ln for ln in log.splitlines() if "127.0.0.1 refused" in ln]
    assert len(named) == 1, f"the refused sender is named once in the log, not per message: {named}"
    assert "allow-list" in named[0]


def test_the_default_allow_list_accepts_this_machine_and_run_refuses_preset_writes(tmp_path: Path) -> None:
    port = free_udp_port()
    show = _show(tmp_path, "oscquery_port = 0", name="writes")
    preset = tmp_path / "state-root" / "writes" / "presets" / "preset-01.json"

    def save_bright() -> None:
        time.sleep(0.5)
        _send_from("127.0.0.1", port, "/preset/save", 1)

    writable = show.with_name("writable.toml")
    writable.write_text(show.read_text().replace("[osc]\n", "[osc]\nallow_writes = true\n"))
    _, stats, _ = _play(tmp_path, "run", writable, port, save_bright, seconds=2)
    assert preset.is_file(), "with allow_writes = true a run saves the preset"
    assert stats["counters"].get("osc_writes_refused", 0) == 0
    saved = preset.read_bytes()

    def dark_then_save() -> None:
        time.sleep(0.5)
        _send_from("127.0.0.1", port, "/colour/brightness", 0.25)  # from this machine: the default accepts it
        time.sleep(0.3)
        _send_from("127.0.0.1", port, "/preset/save", 1)  # `run` refuses writes by default

    frames, stats, log = _play(tmp_path, "run", show, port, dark_then_save, seconds=3)
    assert 30 < _centre(frames[-1]) < 70, "the default allow-list took the brightness from 127.0.0.1"
    assert preset.read_bytes() == saved, "a refused save leaves the preset file exactly as it was"
    assert stats["counters"]["osc_writes_refused"] == 1, stats["counters"]
    assert "write refused" in log and "allow_writes" in log


def test_rehearse_saves_presets_but_grabs_need_the_show_to_say_so(tmp_path: Path) -> None:
    port = free_udp_port()
    show = _show(tmp_path, "oscquery_port = 0", name="grabs")
    folder = tmp_path / "state-root" / "grabs"

    def save_and_grab() -> None:
        time.sleep(0.5)
        _send_from("127.0.0.1", port, "/preset/save", 2)
        _send_from("127.0.0.1", port, "/show/grab")

    _, stats, _ = _play(tmp_path, "rehearse", show, port, save_and_grab, seconds=2)
    assert (folder / "presets" / "preset-02.json").is_file(), "rehearse allows preset writes"
    assert not list(folder.glob("grabs/*.png")), "no picture of a visitor is written unless the show says so"
    assert stats["counters"]["osc_writes_refused"] == 1


def test_check_lists_ports_interfaces_senders_writes_and_keys(tmp_path: Path) -> None:
    show = small_show(tmp_path, name="exposed",
                      osc='host = "0.0.0.0"\nport = 9100\noscquery_port = 9102\nallow = ["10.1.2.0/24"]\n'
                          'allow_writes = false\nfeedback = ["studio-ipad.local:9001"]')
    r = run_cli(["check", show], tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "osc in: UDP 0.0.0.0:9100 on every interface" in out and "lo 127.0.0.1" in out
    assert "oscquery: HTTP 0.0.0.0:9102" in out
    assert "feedback out: UDP to studio-ipad.local:9001" in out
    assert "who may send (OSC and OSCQuery): 10.1.2.0/24" in out
    assert "refused ([osc] allow_writes = false)" in out
    assert "only with ctrl+alt" in out
    assert out.rstrip().endswith("ok")

    default = small_show(tmp_path, name="plain", osc="", file="plain.toml")
    out = run_cli(["check", default], tmp_path).stdout
    assert "this machine and private/link-local networks only (127.0.0.0/8" in out
    assert "refused in `run`" in out


@pytest.mark.parametrize(("table", "key"), [('[osc]\nallow = ["the office"]', "osc.allow"),
                                            ('[keys]\nmodifier = "hyper"', "keys.modifier")])
def test_a_mistake_in_the_new_keys_names_file_and_key(tmp_path: Path, table: str, key: str) -> None:
    show = tmp_path / "bad.toml"
    show.write_text(f'name = "bad"\n[source]\n{SYNTHETIC}\n{table}\n')
    r = run_cli(["check", show], tmp_path)
    assert r.returncode == 2
    assert str(show) in r.stderr and key in r.stderr
    assert "Traceback" not in r.stderr
