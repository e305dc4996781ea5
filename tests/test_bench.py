"""`installation bench` end to end on a tiny model, and the speed paths it measures (the still-room
skip, presenting the model's texture directly, the monitor view's tiles)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_names_this_cpu, make_clip, make_model_folder, write_show

from installation.app import default_registry
from installation.cli import main
from installation.core.params import ParamStore
from installation.ops.bench import BenchConfig, bench, clip_source, load_clip
from installation.render.renderer import Layers, Renderer, read_pixels
from installation.vision.stillness import StillnessGate

RUN_KEYS = {"fps", "cpu_ms_per_frame", "frames_presented", "frames_fresh", "frames_reused", "frames_inferred",
            "seconds", "latency_ms", "stage_ms", "dropped", "faults", "providers", "gl_renderer"}


def tiny_show(tmp_path: Path) -> Path:
    model = make_model_folder(tmp_path / "models" / "tiny", size=64)
    return write_show(tmp_path / "show.toml", f"""name = "bench-test"
[source]
kind = "camera"
[model]
path = "{model}"
[render]
width = 160
height = 90
content_size = 64
""")


def test_bench_writes_every_figure_and_a_plot(tmp_path, capsys):
    show, clip = tiny_show(tmp_path), make_clip(tmp_path / "clip.mp4", frames=12)
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    rc = main(["bench", str(show), "--frames", "8", "--warmup", "2", "--video", str(clip), "--size", "160x90",
               "--paced-fps", "120", "--json", str(out), "--plot", str(png), "--set", "model/skip_still=0",
               "--rounds", "2"])
    assert rc == 0
    r = json.loads(out.read_text())
    assert set(r["runs"]) == {"pipelined", "paced", "naive", "naive_paced"}
    for run in r["runs"].values():
        assert set(run) >= RUN_KEYS
        assert run["frames_presented"] >= 8 and run["fps"] > 0
        assert {"p50", "p95", "p99"} <= set(run["latency_ms"])
        assert {"preprocess", "infer", "draw"} <= set(run["stage_ms"])
        assert run["frames_fresh"] == run["frames_presented"] - run["frames_reused"]
    pipe = r["runs"]["pipelined"]
    ratios = r["ratios_per_round"]
    assert len(ratios) == 2 and len(r["fps_per_round"]) == 2
    assert set(r["fps_per_round"][1]) == {"pipelined", "naive"}, "the paced runs are measured once"
    for rd, ratio in zip(r["fps_per_round"], ratios, strict=True):
        assert ratio == pytest.approx(rd["pipelined"] / rd["naive"], abs=1e-3), "each ratio within its round"
    assert r["ratio_pipelined_to_naive"] == pytest.approx(float(np.median(ratios)), abs=1e-3)
    assert pipe["fps"] in [rd["pipelined"] for rd in r["fps_per_round"]]
    assert r["providers"] == ["CPUExecutionProvider"]
    s = r["settings"]
    assert s["display_size"] == [160, 90] and s["content_size"] == 64 and s["source_size"] == [320, 180]
    assert s["frames"] == 8 and s["warmup"] == 2 and s["paced_fps"] == 120 and s["backend"] == "onnx"
    assert r["device"]["cores"] >= 1 and r["device"]["gl_renderer"]
    assert_names_this_cpu(r["device"])  # the figures name the CPU and its flags (AVX-512, VNNI)
    device_line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("device: "))
    assert device_line.startswith(f"device: CPU {r['device']['cpu']}, {r['device']['cores']} cores"), device_line
    assert {"python", "numpy", "onnxruntime", "opencv", "moderngl", "torch", "gl"} <= set(r["versions"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert s["naive_session"] == "shared with the pipelined runs"
    assert s["inference_workers"] == pipe["workers"] and r["runs"]["naive"]["workers"] == 1
    # the naive loop fed by the 120 fps camera: one thread, never faster than the camera (1 frame of slack
    # in an 8-frame window), and its latency set beside the paced run's
    slow = r["runs"]["naive_paced"]
    assert slow["workers"] == 1 and slow["fps"] <= 120 * 9 / 8 * 1.05
    lat = [f"p50 {x['latency_ms']['p50']:.1f}" for x in (r["runs"]["paced"], slow)]
    assert r["show_speed"].startswith("at a 120 fps camera: pipelined " + lat[0]) and "; naive " + lat[1] in r[
        "show_speed"]


def test_naive_run_can_get_a_session_of_its_own(tmp_path):
    show, clip = tiny_show(tmp_path), make_clip(tmp_path / "clip.mp4", frames=12)
    out = tmp_path / "b.json"
    assert main(["bench", str(show), "--frames", "6", "--warmup", "2", "--video", str(clip), "--size", "160x90",
                 "--json", str(out), "--rounds", "1", "--skip", "paced", "--naive-threads", "0"]) == 0
    r = json.loads(out.read_text())
    assert r["settings"]["naive_session"].startswith("its own, 0 intra-op threads")
    assert r["runs"]["naive"]["fps"] > 0 and r["ratio_pipelined_to_naive"] > 0


def test_a_still_room_reuses_the_output_and_counts_it_apart(tmp_path):
    show, clip = tiny_show(tmp_path), make_clip(tmp_path / "clip.mp4", frames=2)
    pictures = load_clip(clip, 1)  # one picture over and over: nobody moves
    bc = BenchConfig(show=str(show), frames=6, warmup=2, width=160, height=90, runs=("naive",))
    bc.video = clip
    bc.clip_frames = 1
    r = bench(bc)["runs"]["naive"]
    assert len(pictures) == 1
    assert r["frames_presented"] == 6 and r["frames_reused"] == 6
    assert r["frames_fresh"] == 0 and r["fps"] == 0.0  # throughput counts fresh inferences only


def test_unpaced_clip_source_hands_over_at_once_in_order():
    pics = [np.full((4, 4, 3), i, np.uint8) for i in range(3)]
    src = clip_source(pics).start()
    frames = [src.recv(0) for _ in range(5)]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 2, 0, 1]
    assert all(b.t_capture >= a.t_capture for a, b in itertools.pairwise(frames))


def test_stillness_gate():
    gate = StillnessGate()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert not gate.still(a, 0.5, key="m")  # the first picture is always inferred
    noisy = np.clip(a.astype(int) + rng.integers(-2, 3, a.shape), 0, 255).astype(np.uint8)
    assert gate.still(noisy, 0.5, key="m")  # sensor noise averages out in the thumbnail
    assert not gate.still(noisy, 0.5, key="other model")  # a swapped model paints afresh
    moved = np.roll(a, 16, axis=1)
    assert not gate.still(moved, 0.5, key="other model")
    assert not gate.still(moved, 0.0, key="other model")  # 0: off


def _present(r: Renderer, gl, store: ParamStore, content) -> np.ndarray:
    fbo = gl.framebuffer(color_attachments=[gl.renderbuffer((32, 32), 3)])
    r.present(store.publish(), fbo, (32, 32), content)
    return read_pixels(fbo, (32, 32))


def test_plain_output_is_presented_without_a_composite_pass(gl):
    store = ParamStore(default_registry())
    r = Renderer(gl, content_size=32)
    blue = np.zeros((16, 16, 3), np.uint8)
    blue[..., 2] = 255
    r.upload(Layers(camera=np.full((32, 32, 3), 255, np.uint8), output=blue))
    frame0 = r._frame
    content = r.content_for(store.publish())
    assert content is r.out_a.tex and r._frame == frame0 and r.content is content
    assert (_present(r, gl, store, content) == (0, 0, 255)).all()
    store.set("mix/mode", "camera")
    content = r.content_for(store.publish())  # any other mix: the present pass mixes the layers itself
    assert content is None and r._frame == frame0
    assert (_present(r, gl, store, content) == 255).all()
    store.set("mix/feedback", 0.5, ramp_s=0)
    content = r.content_for(store.publish())  # trails remember the last composite: that needs the pass
    assert content is not None and r._frame == frame0 + 1


def test_camera_view_is_made_only_when_a_pass_reads_it(gl):
    store = ParamStore(default_registry())
    r = Renderer(gl, content_size=32)
    made: list[int] = []

    def view():
        made.append(1)
        return np.full((32, 32, 3), 255, np.uint8), None

    r.upload(Layers(output=np.zeros((16, 16, 3), np.uint8), view=view))
    _present(r, gl, store, r.content_for(store.publish()))
    assert made == [], "the plain case never reads the camera"
    store.set("mix/mode", "camera")
    r.upload(Layers(output=np.zeros((16, 16, 3), np.uint8), view=view))
    assert (_present(r, gl, store, r.content_for(store.publish())) == 255).all()
    assert made == [1]


def test_monitor_view_is_four_tiles_of_one_texture_each(gl):
    r = Renderer(gl, content_size=32)
    assert "u_camera" not in r.shaders.programs["present"] and "u_content" in r.shaders.programs["present"]
    store = ParamStore(default_registry())
    mask = np.zeros((32, 32), np.float32)
    mask[:, 16:] = 1.0  # the person on the right
    r.upload(Layers(camera=np.full((32, 32, 3), 200, np.uint8), output=np.full((16, 16, 3), (0, 0, 255), np.uint8),
                    mask=mask, model_input=np.full((16, 16, 3), 100, np.uint8)), monitor=True)
    store.set("display/monitor", True)
    frame0 = r._frame
    pic = _present(r, gl, store, r.content_for(store.publish()))
    assert r._frame == frame0, "no composite pass while the monitor shows the layers"
    assert (pic[:16, :16] == 200).all(), "camera top-left"
    assert (pic[:16, 16:] == 100).all(), "model input top-right"
    assert (pic[16:, :8] == 0).all() and (pic[16:, 9:16] == 255).all(), "mask bottom-left, grey, right half set"
    assert (pic[16:, 16:] == (0, 0, 255)).all(), "output bottom-right"


def test_identity_grade_is_its_own_program_and_the_grade_still_applies(gl):
    r = Renderer(gl, content_size=32)
    assert "u_gamma" not in r.shaders.programs["present"] and "u_gamma" in r.shaders.programs["present_graded"]
    store = ParamStore(default_registry())
    r.upload(Layers(camera=np.zeros((32, 32, 3), np.uint8), output=np.full((16, 16, 3), 64, np.uint8)))
    assert np.abs(_present(r, gl, store, r.content_for(store.publish())).astype(int) - 64).max() <= 1
    store.set("display/gamma", 2.0, ramp_s=0.0)
    graded = _present(r, gl, store, r.content_for(store.publish()))
    assert abs(int(graded.mean()) - 128) <= 2  # (64/255) ** (1/2) * 255
    store.set("display/gamma", 1.0, ramp_s=0.0)
    store.set("colour/brightness", 0.5, ramp_s=0.0)
    assert abs(int(_present(r, gl, store, r.content_for(store.publish())).mean()) - 32) <= 1


def test_present_shades_only_the_content_box():
    from installation.render.projection import content_box, projection_matrix

    assert content_box(projection_matrix((1280, 720), (720, 720), "fit"), (1280, 720)) == (280, 0, 720, 720)
    assert content_box(projection_matrix((1280, 720), (720, 720), "stretch"), (1280, 720)) == (0, 0, 1280, 720)
    pinned = projection_matrix((100, 100), (100, 100), "stretch", corners=((0.1, 0.2), (0, 0), (0, 0), (0, 0)))
    assert content_box(pinned, (100, 100)) == (0, 0, 100, 100)  # the other corners still reach the edges
    inset = projection_matrix((100, 100), (100, 100), "stretch", corners=((0.1, 0.1), (-0.1, 0.1), (-0.1, -0.1),
                                                                          (0.1, -0.1)))
    assert content_box(inset, (100, 100)) == (10, 10, 80, 80)


def test_letterboxed_present_keeps_black_bars_and_the_picture(gl):
    store = ParamStore(default_registry())
    r = Renderer(gl, content_size=16)
    r.upload(Layers(camera=np.zeros((16, 16, 3), np.uint8), output=np.full((16, 16, 3), 200, np.uint8)))
    fbo = gl.framebuffer(color_attachments=[gl.renderbuffer((64, 32), 3)])
    fbo.use()
    gl.clear(1.0, 1.0, 1.0, 1.0)  # stale white must not survive in the bars
    r.present(store.publish(), fbo, (64, 32), r.content_for(store.publish()))
    pic = read_pixels(fbo, (64, 32))
    assert (pic[:, :16] == 0).all() and (pic[:, 48:] == 0).all()
    assert (pic[:, 16:48] == 200).all()
