"""CUDA -> GL without the CPU: a moderngl RGBA8 texture registered with CUDA once, then each frame a
device-to-device copy of a contiguous HxWx4 uint8 tensor into it (cuda-bindings, imported inside)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("installation.gpu")

GL_TEXTURE_2D = 0x0DE1


def _check(result: Any) -> Any:
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        from cuda.bindings import runtime as cudart

        raise RuntimeError(f"CUDA: {cudart.cudaGetErrorString(err)[1].decode()} ({err})")
    return rest[0] if len(rest) == 1 else rest


class GLInterop:
    """Copies an HxWx4 uint8 CUDA tensor into a moderngl RGBA8 texture on the device: registered once
    (cudaGraphicsGLRegisterImage), then per frame map -> cudaMemcpy2DToArray -> unmap. Unmapping
    orders the copy before GL's next use of the texture. Call from the thread that owns the GL context.
    """

    def __init__(self, texture: Any) -> None:
        from cuda.bindings import runtime as cudart

        if texture.components != 4 or texture.dtype != "f1":
            raise ValueError("CUDA-GL interop needs an RGBA8 texture")
        self.cudart = cudart
        self.texture = texture
        self.size = texture.size  # (w, h)
        flags = cudart.cudaGraphicsRegisterFlags.cudaGraphicsRegisterFlagsWriteDiscard
        self.resource = _check(cudart.cudaGraphicsGLRegisterImage(texture.glo, GL_TEXTURE_2D, flags))

    def copy(self, t: Any) -> None:
        rt = self.cudart
        h, w = int(t.shape[0]), int(t.shape[1])
        if (w, h) != tuple(self.size) or t.shape[2] != 4 or not t.is_contiguous():
            raise ValueError(f"expected a contiguous {self.size[1]}x{self.size[0]}x4 tensor, got {tuple(t.shape)}")
        _check(rt.cudaGraphicsMapResources(1, self.resource, 0))
        try:
            array = _check(rt.cudaGraphicsSubResourceGetMappedArray(self.resource, 0, 0))
            _check(rt.cudaMemcpy2DToArray(array, 0, 0, t.data_ptr(), w * 4, w * 4, h,
                                          rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice))
        finally:
            _check(rt.cudaGraphicsUnmapResources(1, self.resource, 0))

    def close(self) -> None:
        if self.resource is not None:
            self.cudart.cudaGraphicsUnregisterResource(self.resource)
            self.resource = None
