"""insert_cached_* on the tiny delta-rule LM: placeholders and cache specs, and the cached graph over
flattened batches (packed prefill, chunked prefill, decode) equals the eager model."""
import pytest
import torch
from torch.fx import Node

from trtllm_flash.export import export_model
from trtllm_flash.ops.interface import OpDescriptor, StateCache, register_descriptor
from trtllm_flash.ops.metadata import build_metadata
from trtllm_flash.transforms import BuildContext, merge_transforms
from trtllm_flash.transforms.graph_utils import find_op_nodes, placeholders
from trtllm_flash.transforms.registry import get_transform

from tiny_models import HEADS, HIDDEN, VOCAB, tiny_delta_lm

NUM_SLOTS = 5


def insert(gm, key="insert_cached_delta_rule", **overrides):
    ctx = BuildContext()
    gm, info = get_transform(key)(merge_transforms({key: overrides})[key]).apply(gm, ctx)
    return gm, info, ctx


@pytest.fixture(scope="module")
def model():
    return tiny_delta_lm()


@pytest.fixture(scope="module")
def cached(model):
    return insert(export_model(model))


def test_source_nodes_become_cached_nodes_with_one_cache_each(cached):
    gm, info, ctx = cached
    assert info.num_matches == 2
    assert not find_op_nodes(gm, torch.ops.trtllm_flash.delta_rule)
    nodes = find_op_nodes(gm, torch.ops.trtllm_flash.cached_delta_rule)
    assert len(nodes) == 2
    names = [p.target for p in placeholders(gm)]
    assert names == ["input_ids", "position_ids", "batch_info_host", "cu_seqlen", "slot_idx", "use_initial_states", "delta_state_0", "delta_state_1"]
    d = HIDDEN // HEADS
    assert ctx.cache_specs == {f"delta_state_{i}": StateCache((HEADS, d, d), torch.float32, kind="state") for i in (0, 1)}
    args = nodes[1].args
    assert [a.target for a in args[4:9]] == ["batch_info_host", "cu_seqlen", "slot_idx", "use_initial_states", "delta_state_1"]
    assert args[9] == pytest.approx(d**-0.5)


def fresh_caches(ctx):
    return {name: torch.zeros(NUM_SLOTS, *spec.shape, dtype=spec.dtype) for name, spec in ctx.cache_specs.items()}


@torch.no_grad()
def run_flat(gm, caches, chunks, slots, starts):
    """One flattened forward: ``chunks`` token lists, their slots and cached prefix lengths -> [T, vocab]."""
    meta = build_metadata([len(c) for c in chunks], starts, slots)
    ids = torch.tensor([t for c in chunks for t in c])[None]
    pos = torch.cat([torch.arange(s, s + len(c)) for c, s in zip(chunks, starts)])[None]
    kwargs = {k: v for k, v in meta.as_dict().items() if k in [p.target for p in placeholders(gm)]}
    return gm(input_ids=ids, position_ids=pos, **kwargs, **caches)[0]


@torch.no_grad()
def test_packed_prefill_then_decode_equals_eager(model, cached):
    gm, _, ctx = cached
    torch.manual_seed(2)
    prompts = [torch.randint(0, VOCAB, (n,)).tolist() for n in (5, 3, 4)]
    slots = [3, 0, 2]
    caches = fresh_caches(ctx)
    out = run_flat(gm, caches, prompts, slots, [0, 0, 0])
    expected = torch.cat([model(torch.tensor([p]), torch.arange(len(p))[None])[0] for p in prompts])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    nxt = [[7], [11], [1]]
    out = run_flat(gm, caches, nxt, slots, [len(p) for p in prompts])
    expected = torch.stack([model(torch.tensor([p + n]), torch.arange(len(p) + 1)[None])[0, -1] for p, n in zip(prompts, nxt)])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert caches["delta_state_0"][1].abs().sum() == 0 and caches["delta_state_0"][4].abs().sum() == 0


@torch.no_grad()
def test_chunked_prefill_continues_the_cached_state(model, cached):
    gm, _, ctx = cached
    prompt = torch.randint(0, VOCAB, (9,), generator=torch.Generator().manual_seed(3)).tolist()
    caches = fresh_caches(ctx)
    run_flat(gm, caches, [prompt[:4]], [1], [0])
    out = run_flat(gm, caches, [prompt[4:]], [1], [4])
    expected = model(torch.tensor([prompt]), torch.arange(9)[None])[0, 4:]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@register_descriptor
class _UnreadableDescriptor(OpDescriptor):
    """Matches delta_rule but cannot size its cache: the pass must fail before touching the graph."""

    name = "test_unreadable_delta_rule"

    @classmethod
    def source_op(cls):
        return torch.ops.trtllm_flash.delta_rule

    @classmethod
    def cached_op(cls):
        return torch.ops.trtllm_flash.cached_delta_rule.default

    @classmethod
    def num_inputs(cls):
        return 4

    @classmethod
    def standard_metadata(cls):
        return ["batch_info_host"]

    @classmethod
    def cache_specs(cls, source_node: Node):
        raise ValueError("cannot size the cache")


def test_failure_leaves_the_graph_untouched(model):
    gm = export_model(model)
    code = gm.code
    with pytest.raises(ValueError, match="cannot size"):
        insert(gm, backend="test_unreadable_delta_rule")
    assert gm.code == code


def test_unknown_backend_names_the_transform(model):
    with pytest.raises(ValueError, match="transforms.insert_cached_delta_rule.backend: unknown op descriptor 'nope'"):
        insert(export_model(model), backend="nope")


def test_no_source_nodes_is_a_skip(cached):
    gm, _, _ = cached
    code = gm.code
    gm, info, ctx = insert(gm)
    assert info.skipped and gm.code == code and not ctx.cache_specs
