#!/usr/bin/env bash
# The GPU checks and bench rows, in one go, on a machine with an NVIDIA GPU (docs/performance.md).
# From the repository root:  OUT=out/gpu bash scripts/gpu_check.sh [FRAMES]
# Optional carried folders: .gl/ (EGL/GL loader .debs, unpacked into /) and .whl/ (wheels the image
# lacks: moderngl, glcontext, pydantic, pyglet, python-osc, ...), installed into /tmp/site.
set -u
OUT=${OUT:-out/gpu}
FRAMES=${1:-600}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f "$vendor" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$vendor
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    python3 - <<'PY'
import onnxruntime as ort, torch, moderngl
print("onnxruntime", ort.__version__, ort.get_available_providers())
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
ctx = moderngl.create_standalone_context(backend="egl")
print("GL", ctx.info["GL_RENDERER"], ctx.info["GL_VERSION"])
try:
    import cuda.bindings as cb
    print("cuda-bindings", cb.__version__)
except ImportError as e:
    print("cuda-bindings missing:", e)
PY
} 2>&1 | tee "$OUT/env.txt"

python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_bench.py tests/test_latency_test.py -rs \
    2>&1 | tee "$OUT/tests.txt" | tail -25

B="python3 -m installation.bench --frames $FRAMES --warmup 60"
row() {  # NAME ARGS...: one bench row, its JSON under $OUT, its summary lines in summary.txt
    local name=$1; shift
    echo "== $name: $*" | tee -a "$OUT/summary.txt"
    $B "$@" --json "$OUT/$name.json" 2>&1 | grep -v " INFO " | tee -a "$OUT/summary.txt"
}
row torch_w64_256 --unet 64@256 --backend torch --plot "$OUT/torch_w64_256.png"
row torch_w64_512 --unet 64@512 --backend torch
row torch_w16_256 --unet 16@256 --backend torch
if python3 -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())"; then
    row ort_cuda_w64_256 --unet 64@256 --providers cuda
else
    echo "== ort_cuda: this onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu is not installed)" \
        | tee -a "$OUT/summary.txt"
fi
if python3 -c "import onnxruntime as o, sys; sys.exit('TensorrtExecutionProvider' not in o.get_available_providers())"; then
    row ort_trt_w64_256 --unet 64@256 --providers tensorrt,cuda
else
    echo "== ort_trt: this onnxruntime has no TensorrtExecutionProvider" | tee -a "$OUT/summary.txt"
fi
