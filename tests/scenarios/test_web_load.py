"""The web under load, judged by the show's own frame count: 50 panels listening to everything while a
value changes twenty times a second, and one client flooding malformed frames. The frame rate is compared
with a baseline measured a moment before in the same run (the machine's other load cancels out)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from installation.control.osc.wire import build_dgram
from tests.scenarios.conftest import osc_send
from tests.scenarios.test_web_oscquery import get, playing

PANELS = 50
WINDOW_S = 4.0


def frames(port: int) -> tuple[float, int]:
    return time.monotonic(), get(port, "/api/status")[1]["frames_presented"]


def fps_over(port: int, seconds: float) -> float:
    t0, n0 = frames(port)
    time.sleep(seconds)
    t1, n1 = frames(port)
    return (n1 - n0) / (t1 - t0)


async def _panel(url: str, stop: asyncio.Event, got: list[int]) -> None:
    async with connect(url, max_queue=None) as ws:
        await ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/"}))
        n = 0
        while not stop.is_set():
            try:
                await asyncio.wait_for(ws.recv(), 0.2)
                n += 1
            except TimeoutError:
                pass
        got.append(n)


async def _flood(url: str, stop: asyncio.Event, sent: list[int]) -> None:
    """Malformed frames as fast as the server takes them; cut off (its pong stuck behind its own flood), it
    comes back, as a misbehaving controller would."""
    junk = [b"\x00garbage", b"/mix/amount\x00", "{not json", json.dumps({"COMMAND": "DANCE"}),
            json.dumps({"COMMAND": "LISTEN", "DATA": 7}), build_dgram("/mix/amount", 99.0), build_dgram("/no", 1)]
    n = 0
    while not stop.is_set():
        try:
            async with connect(url, max_queue=None) as ws:
                reader = asyncio.ensure_future(_drain(ws))
                while not stop.is_set():
                    await ws.send(junk[n % len(junk)])
                    n += 1
                    if n % 50 == 0:
                        await asyncio.sleep(0)
                reader.cancel()
        except (ConnectionClosed, OSError):
            sent.append(-1)  # cut off
    sent.append(n)


async def _drain(ws: ClientConnection) -> None:
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass


async def _load(run: dict, seconds: float) -> tuple[float, list[int], list[int]]:
    url = f"ws://127.0.0.1:{run['web']}/ws"
    stop = asyncio.Event()
    got: list[int] = []
    sent: list[int] = []
    tasks = [asyncio.ensure_future(_panel(url, stop, got)) for _ in range(PANELS)]
    tasks.append(asyncio.ensure_future(_flood(url, stop, sent)))
    await asyncio.sleep(1.0)  # everyone connected and listening
    loop = asyncio.get_running_loop()
    measured = loop.run_in_executor(None, fps_over, run["web"], seconds)
    t_end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < t_end:
        i += 1
        osc_send(run["osc"], "/mix/amount", (i % 64) / 64)
        await asyncio.sleep(0.05)
    fps = await measured
    stop.set()
    await asyncio.gather(*tasks)
    return fps, got, sent


def test_fifty_panels_and_a_flood_keep_the_frame_rate(tmp_path: Path) -> None:
    with playing(tmp_path, seconds=90) as run:
        time.sleep(1.0)  # past the start's first frames
        tries = []
        for _ in range(2):  # a second try only when the machine's other work got in the way of the first
            base = fps_over(run["web"], WINDOW_S)
            loaded, got, sent = asyncio.run(_load(run, WINDOW_S))
            tries.append((base, loaded))
            if loaded >= 0.9 * base:
                break
        after = get(run["web"], "/api/status")[1]
    flooded, cut = sent[-1], sent.count(-1)
    print(f"web load: {' then '.join(f'{b:.1f} fps alone, {x:.1f} fps loaded' for b, x in tries)}; {PANELS} panels, "
          f"{flooded} malformed frames sent ({after['web'].get('refused malformed', 0)} read and refused as "
          f"malformed; the flooder cut off {cut} times)")
    assert base > 20, f"the baseline itself is too slow to judge: {base:.1f} fps"
    assert loaded >= 0.9 * base, f"the frame rate fell from {base:.1f} to {loaded:.1f} fps under web load"
    assert len(got) == PANELS and min(got) >= 20, f"every panel kept hearing values: {sorted(got)[:5]}..."
    assert flooded > 200 and after["web"].get("refused malformed", 0) > 50, after["web"]
