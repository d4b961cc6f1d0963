"""One host-to-device copy per step for the runtime's small per-step inputs.

A decode step at batch 1 spends more time issuing nine tiny copies (tokens, positions, the metadata of
:mod:`trtllm_flash.ops.metadata`, the gather indices) than the GPU spends on some whole layers. The
stager writes every array's bytes into one pinned host buffer (16-byte aligned) through a numpy view
of it, copies it with a single asynchronous ``cudaMemcpy``, and hands back dtype views of one device
byte buffer. Every device takes the same path (on the CPU the host buffer is not pinned and the copy is
synchronous), so the packing is tested on the CPU.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict

import numpy as np
import torch

_ALIGN = 16


@lru_cache(maxsize=None)
def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


class HostToDeviceStager:
    """Packs host numpy arrays into one copy to ``device``.

    Both buffers are reused: the views returned by :meth:`upload` are valid until the next call (the
    engine reads them within its step). On CUDA the host buffer is pinned and, before overwriting it,
    the stager waits for the previous copy to have left it.
    """

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self._host = torch.empty(0, dtype=torch.uint8)
        self._host_bytes = self._host.numpy()  # numpy view of the (pinned on CUDA) host buffer
        self._device_buffer = torch.empty(0, dtype=torch.uint8, device=self.device)
        self._copied = torch.cuda.Event() if self.device.type == "cuda" else None  # None: copies are synchronous

    def upload(self, arrays: Dict[str, np.ndarray]) -> Dict[str, torch.Tensor]:
        """``{name: host numpy array}`` -> ``{name: device tensor}`` (same shapes and dtypes, contiguous)."""
        arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
        offsets, total = {}, 0
        for name, a in arrays.items():
            offsets[name] = total
            total += -(-a.nbytes // _ALIGN) * _ALIGN
        self._reserve(total)
        if self._copied is not None:
            self._copied.synchronize()  # the previous step's copy has read the host buffer
        for name, a in arrays.items():
            self._host_bytes[offsets[name] : offsets[name] + a.nbytes] = a.reshape(-1).view(np.uint8)
        self._device_buffer[:total].copy_(self._host[:total], non_blocking=True)
        if self._copied is not None:
            self._copied.record()
        return {
            name: self._device_buffer[offsets[name] : offsets[name] + a.nbytes].view(_torch_dtype(a.dtype)).view(a.shape)
            for name, a in arrays.items()
        }

    def _reserve(self, nbytes: int) -> None:
        if self._host.numel() >= nbytes:
            return
        size = max(nbytes, 2 * self._host.numel(), 4096)
        if self._copied is not None:
            self._copied.synchronize()
            torch.cuda.current_stream(self.device).synchronize()  # nothing may still read the old device buffer
        self._host = torch.empty(size, dtype=torch.uint8, pin_memory=self._copied is not None)
        self._host_bytes = self._host.numpy()
        self._device_buffer = torch.empty(size, dtype=torch.uint8, device=self.device)
