"""Row argmax family: importing it registers ``torch.ops.trtllm_flash.argmax`` (no cache, no descriptor),
greedy sampling's ``logits [N, V] -> [N]`` in one launch at decode's few rows and large vocabulary."""
from trtllm_flash.ops.argmax.ops import argmax, argmax_rows

__all__ = ["argmax", "argmax_rows"]
