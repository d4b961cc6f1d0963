"""One host-to-device copy per step for the runtime's small per-step tensors.

A decode step at batch 1 spends more time issuing nine tiny copies (tokens, positions, the metadata of
:mod:`trtllm_flash.ops.metadata`, the gather indices) than the GPU spends on some whole layers. The
stager packs every tensor's bytes into one pinned host buffer (16-byte aligned), copies it with a
single asynchronous ``cudaMemcpy``, and hands back dtype views of one device byte buffer.
"""
from __future__ import annotations

from typing import Dict

import torch

_ALIGN = 16


class HostToDeviceStager:
    """Packs host tensors into one copy to ``device``; on a CPU device tensors are returned as they are.

    Both buffers are reused: the views returned by :meth:`upload` are valid until the next call (the
    engine reads them within its step). Before overwriting the host buffer the stager waits for the
    previous copy to have left it.
    """

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self._host = torch.empty(0, dtype=torch.uint8)
        self._device_buffer = torch.empty(0, dtype=torch.uint8, device=self.device)
        self._copied = torch.cuda.Event() if self.device.type == "cuda" else None

    def upload(self, tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``{name: host tensor}`` -> ``{name: device tensor}`` (same shapes and dtypes, contiguous)."""
        if self.device.type != "cuda":
            return {name: t.to(self.device) for name, t in tensors.items()}
        offsets, total = {}, 0
        for name, t in tensors.items():
            offsets[name] = total
            total += -(-t.numel() * t.element_size() // _ALIGN) * _ALIGN
        self._reserve(total)
        self._copied.synchronize()  # the previous step's copy has read the host buffer
        for name, t in tensors.items():
            nbytes = t.numel() * t.element_size()
            self._host[offsets[name] : offsets[name] + nbytes].copy_(t.contiguous().view(-1).view(torch.uint8))
        self._device_buffer[:total].copy_(self._host[:total], non_blocking=True)
        self._copied.record()
        out = {}
        for name, t in tensors.items():
            nbytes = t.numel() * t.element_size()
            out[name] = self._device_buffer[offsets[name] : offsets[name] + nbytes].view(t.dtype).view(t.shape)
        return out

    def _reserve(self, nbytes: int) -> None:
        if self._host.numel() >= nbytes:
            return
        size = max(nbytes, 2 * self._host.numel(), 4096)
        self._copied.synchronize()
        torch.cuda.current_stream(self.device).synchronize()  # nothing may still read the old device buffer
        self._host = torch.empty(size, dtype=torch.uint8, pin_memory=True)
        self._device_buffer = torch.empty(size, dtype=torch.uint8, device=self.device)
