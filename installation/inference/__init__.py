"""Models: cards, the ONNX Runtime backend, worker planning, the torch/CUDA frame path."""
