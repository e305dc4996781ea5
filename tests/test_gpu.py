"""The GPU frame path's parts. The torch backend and the torch preprocessing also run on the CPU, so
their agreement with ONNX Runtime and the CPU Chain is checked everywhere; what needs CUDA (fp16,
CUDA graphs, the CUDA -> GL copy) skips without it, saying why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_clip, make_model_folder

from installation.core.errors import UserError
from installation.inference.models import load_model
from installation.inference.onnx_torch import OnnxModule
from installation.inference.torch_backend import GpuChain, TorchBackend, cuda_status, resample_matrix
from installation.vision.preprocess import Chain, ChainState

torch = pytest.importorskip("torch")
CUDA, WHY = cuda_status()
needs_cuda = pytest.mark.skipif(not CUDA, reason=f"needs CUDA: {WHY}")

CHAINS = {
    "plain": "plain",
    "grey_blur_downscale": "grey_blur_downscale",
    "blur_grey_invert_letterbox": [{"step": "flip"}, {"step": "crop", "crop": "fit"}, {"step": "resize"},
                                   {"step": "blur", "blur": 2.0}, {"step": "grey"}, {"step": "invert"}],
    "stretch_up_with_lerps": [{"step": "flip", "flip": False}, {"step": "crop", "crop": "none"},
                              {"step": "resize"}, {"step": "lerp_input", "input_lerp": 0.5},
                              {"step": "lerp_output", "output_lerp": 0.5}],
}


def camera_pictures(tmp_path: Path, n: int = 3) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(make_clip(tmp_path / "c.mp4", frames=n, size=(320, 180))))
    out = []
    for _ in range(n):
        _ok, bgr = cap.read()
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return out


def unet_folder(tmp_path: Path, size: int = 64, width: int = 8) -> Path:
    """Our U-Net exported as the exporter does, with weights far from their init so every op matters."""
    from installation.inference.models import ModelCard
    from installation.training.export import to_onnx
    from installation.training.networks import default_depth, define_G

    torch.manual_seed(1)
    G = define_G("unet", width=width, depth=default_depth(size))
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
        for p in G.parameters():
            p.normal_(0, 0.15)
    folder = tmp_path / "unet"
    folder.mkdir()
    to_onnx(G.eval(), size, folder / "model.onnx")
    ModelCard(name="unet", size=(size, size), chain=Chain.from_spec("plain", size)).save(folder)
    return folder


@pytest.mark.parametrize("which", ["tiny", "unet"])
def test_torch_backend_on_the_cpu_matches_onnx_runtime(tmp_path, which):
    folder = make_model_folder(tmp_path / "tiny") if which == "tiny" else unet_folder(tmp_path)
    ort_model = load_model(folder, providers="cpu")
    backend = TorchBackend.from_onnx(ort_model.path, ort_model.card, device="cpu")
    assert backend.providers == ["torch-cpu fp32"]
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    a, b = ort_model.backend.run(x), backend.run(x)
    assert np.abs(a).mean() > 0.05  # a picture, not a constant
    assert np.abs(a - b).max() < 1e-4


def test_torch_backend_names_ops_it_cannot_run(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Resize", ["input", "", "scales"], ["output"])], "g",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(UserError, match="Resize"):
        OnnxModule.load(path)


def test_resample_matrices_keep_flat_pictures_flat():
    for mode in ("area", "cubic", "linear"):
        for n_in, n_out in ((720, 256), (11, 256), (256, 256), (7, 3)):
            if mode == "area" and n_out > n_in:
                continue
            assert np.allclose(resample_matrix(n_in, n_out, mode).sum(axis=1), 1.0)


def _parity(chain: Chain, pictures: list[np.ndarray], device: str) -> tuple[float, float]:
    vals = chain.param_values()
    cpu_state, gpu_state = ChainState(), ChainState()
    g = GpuChain(chain, device)
    worst_mean = worst_max = 0.0
    for img in pictures:
        want, _ = chain.apply_live(img, vals, cpu_state)
        got = g.apply_live(torch.from_numpy(img).to(device), vals, gpu_state)
        got = got.permute(1, 2, 0).cpu().numpy()
        assert got.shape == want.shape
        d = np.abs(got - want.astype(np.float32))
        worst_mean, worst_max = max(worst_mean, float(d.mean())), max(worst_max, float(d.max()))
        out_want = chain.apply_output(want, vals, cpu_state)
        out_got = g.apply_output(torch.from_numpy(want).permute(2, 0, 1).float().to(device), vals, gpu_state)
        assert np.abs(out_got.permute(1, 2, 0).cpu().numpy() - out_want).max() <= 1.0
    return worst_mean, worst_max


@pytest.mark.parametrize("name", list(CHAINS))
def test_torch_preprocessing_matches_the_cpu_chain(tmp_path, name):  # torch on the CPU: runs everywhere
    chain = Chain.from_spec(CHAINS[name], 64)
    mean, worst = _parity(chain, camera_pictures(tmp_path), "cpu")
    assert mean < 0.1 and worst <= 2.0  # cv2's fixed-point blur rounds a level differently, at most


def test_steps_without_a_torch_version_are_named():
    assert GpuChain.unsupported(Chain.from_spec("edges", 64)) == ["canny"]
    assert GpuChain.unsupported(Chain.from_spec("grey_blur_downscale", 64)) == []


# ---- CUDA ---------------------------------------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("name", list(CHAINS))
def test_gpu_preprocessing_matches_the_cpu_chain(tmp_path, name):
    chain = Chain.from_spec(CHAINS[name], 64)
    mean, worst = _parity(chain, camera_pictures(tmp_path), "cuda")
    assert mean < 0.1 and worst <= 2.0


@needs_cuda
def test_cuda_backend_fp16_graph_matches_onnx_runtime(tmp_path):
    folder = unet_folder(tmp_path)
    ref = load_model(folder, providers="cpu")
    m = load_model(folder, backend="torch")
    assert m.backend.providers == ["torch-cuda fp16 channels_last cuda_graph"]
    for seed in range(3):  # replays reuse the captured graph on fresh inputs
        x = np.random.default_rng(seed).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
        a, b = ref.backend.run(x), m.backend.run(x)
        assert np.abs(a - b).max() < 3e-2 and np.abs(a - b).mean() < 3e-3


@needs_cuda
def test_gpu_frame_path_matches_the_cpu_path(tmp_path):
    from installation.inference.torch_backend import gpu_path_for

    folder = unet_folder(tmp_path)
    m = load_model(folder, backend="torch")
    path = gpu_path_for(m)
    assert path is not None
    ref = load_model(folder, providers="cpu")
    vals = m.card.chain.param_values()
    odd = np.random.default_rng(2).integers(0, 255, (90, 151, 3), dtype=np.uint8)  # an odd margin to crop
    for img in [*camera_pictures(tmp_path), odd]:
        out = path.process(img, vals, ChainState())
        assert out.is_cuda and out.dtype == torch.uint8 and tuple(out.shape) == (64, 64, 4)
        want = ref.infer(m.card.chain.apply_live(img, vals, ChainState())[0])
        got = out[:, :, :3].cpu().numpy()
        assert (out[:, :, 3] == 255).all()
        assert np.abs(got.astype(int) - want).mean() < 2.0  # fp16 against fp32


@needs_cuda
def test_cuda_to_gl_copy_fills_the_texture(gl):
    from installation.render.renderer import Texture

    tex = Texture(gl)
    want = torch.randint(0, 256, (48, 80, 4), dtype=torch.uint8, device="cuda")
    tex.upload(want)  # a CUDA tensor goes through interop, not tex.write
    gl.finish()
    got = np.frombuffer(tex.tex.read(), np.uint8).reshape(48, 80, 4)
    assert tex.tex.components == 4
    assert np.array_equal(got, want.cpu().numpy())
    want2 = torch.randint(0, 256, (48, 80, 4), dtype=torch.uint8, device="cuda")
    tex.upload(want2)  # the registration is reused
    gl.finish()
    assert np.array_equal(np.frombuffer(tex.tex.read(), np.uint8).reshape(48, 80, 4), want2.cpu().numpy())


def test_load_model_picks_the_torch_backend_by_name(tmp_path):
    m = load_model(make_model_folder(tmp_path / "tiny"), backend="torch")
    assert isinstance(m.backend, TorchBackend)
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    ref = load_model(m.path, providers="cpu")
    tol = 2 if m.backend.fp16 else 1  # fp16 on a GPU, else float32 rounding only
    assert np.abs(m.infer(img).astype(int) - ref.infer(img)).max() <= tol
    with pytest.raises(UserError, match="backend"):
        load_model(m.path, backend="tensorflow")
