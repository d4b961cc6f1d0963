"""Several greedy decode steps in one launch (``decode_steps_per_launch``).

A decode-only batch's next step needs nothing from the host but its new tokens: every row brings one
token at the next position, into the same slot and (with the pages allocated ahead) the same page-table
row. So ``k`` steps can run back to back on the device: step ``i`` samples greedily, its tokens become
step ``i + 1``'s ``input_ids``, and ``position_ids`` / ``input_pos`` advance by one. The host reads the
``k × n`` tokens once, and checks the stop conditions over them (tokens past a stop are dropped).

The same loop runs eagerly (CPU, batches without a captured graph) and inside a captured CUDA graph
(:meth:`trtllm_flash.runtime.cuda_graph.CudaGraphRunner.decode_steps`).
"""
from __future__ import annotations

from typing import Callable, Dict

import torch

from trtllm_flash.ops.argmax import argmax_rows

#: the decode inputs a step advances; every other input (slots, pages, caches) is the same for all k steps
ADVANCED = ("input_ids", "position_ids", "input_pos")


def greedy_decode_steps(run: Callable[..., torch.Tensor], inputs: Dict[str, torch.Tensor], out: torch.Tensor) -> torch.Tensor:
    """``out [k, n]`` int64 <- the greedy tokens of ``k = out.shape[0]`` decode steps of ``run(**inputs)``.

    ``inputs`` are a decode-only batch of ``n`` rows (``input_ids, position_ids [1, n]`` int64,
    ``input_pos [n]`` int32, the rest of the metadata and the caches); ``run`` returns logits whose rows
    are the ``n`` tokens'. ``input_ids``, ``position_ids`` and ``input_pos`` are advanced in place between
    steps (they end at step ``k - 1``'s values); greedy sampling is the runtime's own
    (:func:`argmax_rows` over fp32 logits), so every token equals what ``k`` single steps give.
    """
    k = out.shape[0]
    for i in range(k):
        logits = run(**inputs)
        tokens = argmax_rows(logits.reshape(-1, logits.shape[-1]).float())
        out[i].copy_(tokens)
        if i + 1 < k:
            inputs["input_ids"].copy_(tokens.view_as(inputs["input_ids"]))
            inputs["position_ids"].add_(1)
            if "input_pos" in inputs:
                inputs["input_pos"].add_(1)
    return out
