"""Scenario: two shows in one rig. Show A sends its picture over NDI; show B takes A's NDI picture as its
source and records what it shows. An operator switches A's output off over OSC and on again: B waits,
reconnects, and shows A's picture again. Judged by B's recording, both shows' stats and exit codes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.scenarios.conftest import frames_of, free_udp_port, osc_send, start_cli, wait_presenting

SIZE = 160


pytestmark = pytest.mark.usefixtures("needs_ndi")


def picture() -> np.ndarray:
    """Four coloured quarters on a gradient: where each colour lands shows the picture is A's, unmirrored."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    img = np.stack([xx * 160 + 40, yy * 160 + 40, np.full_like(xx, 90)], axis=2)
    h = SIZE // 2
    img[20:h - 10, 20:h - 10] = (230, 40, 40)
    img[h + 10:SIZE - 20, h + 10:SIZE - 20] = (40, 40, 230)
    return img.astype(np.uint8)


def show(tmp: Path, name: str, source: str, extra: str = "") -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(f"""name = "{name}"
{source}
[render]
width = {SIZE}
height = {SIZE}
content_size = {SIZE}
[params]
"pre/flip" = false
{extra}
""")
    return path


def test_a_show_feeds_another_over_ndi_and_the_operator_switches_it_off_and_on(tmp_path: Path) -> None:
    a_name = f"rig-a-{os.getpid()}"
    clip = tmp_path / "still.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (SIZE, SIZE))
    for _ in range(30):
        w.write(cv2.cvtColor(picture(), cv2.COLOR_RGB2BGR))
    w.release()
    a = show(tmp_path, a_name, f'[source]\nkind = "video"\nvideo = "{clip}"',
             '[[output]]\nkind = "ndi"\nname = "feed"\nrate = 0')
    b = show(tmp_path, "rig-b", f'[source]\nkind = "ndi"\nname = "{a_name} feed"\nwidth = {SIZE}\nheight = {SIZE}')
    port = free_udp_port()
    proc_a = start_cli(["rehearse", a, "--headless", "--seconds", "16", "--osc-port", port, "--oscquery-port", 0,
                        "--stats", tmp_path / "a.json"], tmp_path)
    proc_b = start_cli(["rehearse", b, "--headless", "--seconds", "14", "--no-osc", "--record", tmp_path / "b.mp4",
                        "--stats", tmp_path / "b.json"], tmp_path)
    try:
        wait_presenting(tmp_path, b, proc_b)  # B presents only once A's pictures arrive
        time.sleep(1.0)
        osc_send(port, "/output/feed/on", 0)
        time.sleep(4.5)  # longer than ndi.STALL_S: B gives up on the silent sender and looks for it again
        osc_send(port, "/output/feed/on", 1)
        _, err_b = proc_b.communicate(timeout=60)
        _, err_a = proc_a.communicate(timeout=60)
    finally:
        for p in (proc_a, proc_b):
            if p.poll() is None:
                p.kill()
    assert proc_a.returncode == 0, err_a[-3000:]
    assert proc_b.returncode == 0, err_b[-3000:]
    sa = json.loads((tmp_path / "a.json").read_text())
    sb = json.loads((tmp_path / "b.json").read_text())
    sent = sa["counters"]["output_feed_sent"]
    assert 30 < sent < sa["frames_presented"] - 90  # about 4.5 s of A's pictures were not sent
    assert sb["source"] == f"ndi {a_name} feed"
    assert sb["faults"].get("source", 0) >= 1 and "no picture from NDI source" in sb["last_fault"], sb
    frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames_of(tmp_path / "b.mp4")]
    cv2.imwrite(str(tmp_path / "b_last.png"), cv2.cvtColor(frames[-1], cv2.COLOR_RGB2BGR))
    want = picture()
    assert float(np.abs(frames[-1].astype(int) - want.astype(int)).mean()) < 8.0  # A's picture, back again
    assert float(np.abs(frames[-1].astype(int) - want[:, ::-1].astype(int)).mean()) > 20.0  # not mirrored
