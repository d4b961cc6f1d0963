"""CUDA-graph replay of padded decode batches on the tiny delta-rule LM (GPU only)."""
import pytest
import torch

from trtllm_flash.export import export_model
from trtllm_flash.ops.metadata import build_metadata
from trtllm_flash.runtime.cuda_graph import CudaGraphRunner
from trtllm_flash.transforms import BuildContext, merge_transforms
from trtllm_flash.transforms.graph_utils import placeholders
from trtllm_flash.transforms.registry import get_transform

from tiny_models import VOCAB, tiny_delta_lm

pytestmark = pytest.mark.gpu
NUM_SLOTS = 5  # max_batch_size 4 + the sentinel


def cached_graph(device):
    ctx = BuildContext(max_batch_size=4, device=torch.device(device))
    gm = export_model(tiny_delta_lm().to(device))
    key = "insert_cached_delta_rule"
    gm, _ = get_transform(key)(merge_transforms()[key]).apply(gm, ctx)
    return gm, ctx


def step(fn, gm, caches, chunks, slots, starts):
    meta = build_metadata([len(c) for c in chunks], starts, slots, device="cuda").as_dict()
    names = [p.target for p in placeholders(gm)]
    ids = torch.tensor([t for c in chunks for t in c], device="cuda")[None]
    pos = torch.cat([torch.arange(s, s + len(c)) for c, s in zip(chunks, starts)]).cuda()[None]
    out = fn(input_ids=ids, position_ids=pos, **{k: v for k, v in meta.items() if k in names}, **caches)
    return out.reshape(-1, VOCAB)


@torch.no_grad()
def test_padded_replay_matches_eager_and_touches_only_live_and_sentinel_slots():
    gm, ctx = cached_graph("cuda")
    runner = CudaGraphRunner(gm, [p.target for p in placeholders(gm)], [4, 2, 1], 4, max_pages_per_seq=2, cache_specs=ctx.cache_specs)
    caches = {n: torch.zeros(NUM_SLOTS, *s.shape, dtype=s.dtype, device="cuda") for n, s in ctx.cache_specs.items()}
    prompts, slots = [[1, 2, 3], [4, 5], [6, 7, 8, 9]], [2, 0, 3]
    step(gm, gm, caches, prompts, slots, [0, 0, 0])
    eager_caches = {n: c.clone() for n, c in caches.items()}
    untouched_slot = caches["delta_state_0"][1].clone()
    starts = [len(p) for p in prompts]
    replayed = step(runner, gm, caches, [[10], [11], [12]], slots, starts)  # 3 rows padded to the 4-graph
    eager = step(gm, gm, eager_caches, [[10], [11], [12]], slots, starts)
    assert runner.captured_sizes == [4, 2, 1]
    assert torch.isfinite(replayed).all() and replayed.shape == (3, VOCAB)
    torch.testing.assert_close(replayed, eager, rtol=1e-4, atol=1e-4)
    for name in caches:
        torch.testing.assert_close(caches[name][:NUM_SLOTS - 1], eager_caches[name][:NUM_SLOTS - 1], rtol=1e-4, atol=1e-4)
    assert torch.equal(caches["delta_state_0"][1], untouched_slot)
