"""Drive an AutoDeploy descriptor the way AutoDeploy's cache insertion does, without TensorRT-LLM.

Mirrors the argument assembly of ``_InsertCachedOperator._apply`` in ``AD/transform/library/kvcache.py``
(RH-3): ``(*node.args[:get_num_qkv_args()], *[named arg for get_standard_metadata_args()],
*prepare_op(<its schema args matched by name to SequenceInfo>, *const_args), *caches (one per
get_cache_initializers key, allocated by the handler), *get_constants(node))``.

Family cases (inputs of each source op in the model's ranges) live here too; :func:`require_family`
imports a family's op module (a broken import fails the test, it is never a skip).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.fx.experimental.proxy_tensor import make_fx


@dataclass
class FamilyCase:
    """``make(seq_len, seed)`` -> full source-op args of ONE sequence ``[1, seq_len, ...]``;
    ``token_args``: indices of the per-token tensors (sliced along dim 1), the rest are per-layer."""

    name: str
    module: str
    make: Callable[[int, int], List]
    token_args: Tuple[int, ...]
    atol: float = 2e-4
    variant: str = ""

    @property
    def case_id(self) -> str:
        return f"{self.name}[{self.variant}]" if self.variant else self.name


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _delta_rule(s: int, seed: int) -> List:
    g = _g(seed)
    h, dk, dv = 2, 8, 6
    q = F.normalize(torch.randn(1, s, h, dk, generator=g), dim=-1)
    k = F.normalize(torch.randn(1, s, h, dk, generator=g), dim=-1)
    v = torch.randn(1, s, h, dv, generator=g)
    beta = torch.sigmoid(torch.randn(1, s, h, generator=g))
    return [q, k, v, beta, dk ** -0.5]


def _delta_rule_prologue(s: int, seed: int) -> List:
    """Raw q, k and beta logits with the prologue options set, as fuse_delta_rule_prologue leaves the op."""
    g = _g(seed)
    h, dk, dv = 2, 8, 6
    q, k = (2 * torch.randn(1, s, h, dk, generator=g) for _ in range(2))
    v = torch.randn(1, s, h, dv, generator=g)
    b = 2 * torch.randn(1, s, h, generator=g)
    return [q, k, v, b, dk ** -0.5, 1e-6, True]


def _ssm(s: int, seed: int) -> List:
    g = _g(seed)
    h, p, n, groups = 2, 4, 8, 1
    x = torch.randn(1, s, h, p, generator=g)
    dt = torch.randn(1, s, h, generator=g)
    A = -torch.exp(torch.rand(h, generator=g))
    B = torch.randn(1, s, groups, n, generator=g) * 0.5
    C = torch.randn(1, s, groups, n, generator=g) * 0.5
    D = torch.rand(h, generator=g)
    dt_bias = torch.rand(h, generator=g) - 2.0
    return [x, dt, A, B, C, D, dt_bias, 0.0, float("inf"), 4]


def _causal_conv(s: int, seed: int) -> List:
    g = _g(seed)
    c, k = 6, 4
    return [torch.randn(1, s, c, generator=g), torch.randn(c, 1, k, generator=g) * 0.5, torch.randn(c, generator=g), "silu"]


def _attention(window: int) -> Callable[[int, int], List]:
    def make(s: int, seed: int) -> List:
        g = _g(seed)
        h, hkv, d = 4, 2, 8
        q, k, v = (torch.randn(1, s, n, d, generator=g) for n in (h, hkv, hkv))
        return [q, k, v, d ** -0.5, window]

    return make


CASES: Dict[str, FamilyCase] = {
    case.case_id: case
    for case in (
        FamilyCase("trtllm_flash_attention", "trtllm_flash.ops.attention", _attention(0), (0, 1, 2)),
        FamilyCase("trtllm_flash_attention", "trtllm_flash.ops.attention", _attention(3), (0, 1, 2), variant="window3"),
        FamilyCase("trtllm_flash_ssm", "trtllm_flash.ops.mamba", _ssm, (0, 1, 3, 4)),
        FamilyCase("trtllm_flash_causal_conv", "trtllm_flash.ops.causal_conv", _causal_conv, (0,)),
        FamilyCase("trtllm_flash_delta_rule", "trtllm_flash.ops.delta_rule", _delta_rule, (0, 1, 2, 3)),
        FamilyCase(
            "trtllm_flash_delta_rule", "trtllm_flash.ops.delta_rule", _delta_rule_prologue, (0, 1, 2, 3), variant="prologue"
        ),
    )
}


def require_family(case: FamilyCase) -> None:
    """Import the family's op module and check that it registered its descriptor (raises otherwise)."""
    importlib.import_module(case.module)
    from trtllm_flash.ops.interface import all_descriptors

    assert case.name in all_descriptors(), f"{case.module} registers no descriptor {case.name!r}"


def source_node(op_packet, args: Sequence) -> torch.fx.Node:
    """The traced source-op node (with ``meta['val']`` on its tensor args) of ``op_packet(*args)``."""
    tensor_pos = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]

    def call(*tensors):
        full = list(args)
        for i, t in zip(tensor_pos, tensors):
            full[i] = t
        return op_packet(*full)

    gm = make_fx(call, tracing_mode="fake")(*[args[i] for i in tensor_pos])
    return next(n for n in gm.graph.nodes if n.op == "call_function" and n.target in (op_packet, op_packet.default))


def nest(seq_info, chunks: Sequence[Tuple[int, int, int]], pages: Dict[int, List[int]], tokens: Optional[Dict[int, List[int]]] = None) -> None:
    """Lay out one step in ``seq_info`` like the executor: ``chunks`` = (sequence id, input_pos, n tokens)
    in batch order; sequence id = its slot; ``pages[seq]`` = its KV pages (first ones cover the prefix);
    ``tokens[seq]`` = the sequence's token ids (ones if not given)."""
    tpb = page_size_of(seq_info)
    cache_loc, pages_per_seq = [], []
    for seq, pos, n in chunks:
        needed = -(-(pos + n) // tpb)
        cache_loc += pages[seq][:needed]
        pages_per_seq.append(needed)
    ids = [tokens[seq][pos : pos + n] if tokens else [1] * n for seq, pos, n in chunks]
    if hasattr(seq_info, "batch_info"):  # BatchInfo generation: flat ids + cumulative counts
        cu = [0]
        for n in pages_per_seq:
            cu.append(cu[-1] + n)
        lengths = [0]
        for seq_ids in ids:
            lengths.append(lengths[-1] + len(seq_ids))
        seq_info.nest_sequences(
            [t for seq_ids in ids for t in seq_ids], cu_seqlen=lengths, input_pos=[pos for _, pos, _ in chunks],
            cache_loc=cache_loc, cu_num_pages=cu, slot_idx=[seq for seq, _, _ in chunks], gather_context_logits=True,
        )
        return
    seq_info.nest_sequences(
        ids,
        input_pos=[pos for _, pos, _ in chunks],
        cache_loc=cache_loc,
        pages_per_seq=pages_per_seq,
        slot_idx=[seq for seq, _, _ in chunks],
    )


def run_step(descriptor, node, seq_info, caches: List[torch.Tensor], inputs: List[torch.Tensor], token_args: Sequence[int]):
    """Call the cached op like AutoDeploy's inserted node. ``inputs``: the ``get_num_qkv_args()`` leading
    args, per-token ones flat ``[T, ...]`` (reshaped here like ``input_ids``: ``[1, T]`` or ``[b, 1]``)."""
    ids = get_arg(seq_info, "input_ids")
    qkv = [t.reshape(*ids.shape, *t.shape[1:]) if i in token_args else t for i, t in enumerate(inputs)]
    assert len(qkv) == descriptor.get_num_qkv_args()
    meta_std = [get_arg(seq_info, name) for name in descriptor.get_standard_metadata_args()]
    prepare, num_out, const_args = descriptor.get_prepare_extra_metadata_info(node)
    meta_extra = []
    if prepare is not None:
        names = [a.name for a in prepare._schema.arguments]
        meta_extra = list(prepare(*[get_arg(seq_info, n) for n in names if n in seq_info.available_args], *const_args))
        assert len(meta_extra) == num_out
    buffers = list(getattr(descriptor, "get_global_buffer_initializers", lambda n: {})(node))
    assert not buffers, "our descriptors ask for no global buffers"
    mask = [None] if passes_custom_mask() else []
    return descriptor.get_cached_attention_op()(*qkv, *mask, *meta_std, *meta_extra, *caches, *descriptor.get_constants(node))


def passes_custom_mask() -> bool:
    """Whether the installed insertion transform passes a custom-mask argument after the inputs."""
    from tensorrt_llm._torch.auto_deploy.transform.library import kvcache

    return hasattr(kvcache.InsertCachedAttention, "_get_custom_mask_for_attn_node")


def generation(ad) -> str:
    """The AutoDeploy API generation the ``autodeploy`` fixture registered into."""
    return ad.registration.generation


def make_sequence_info(ad, max_seq_len: int, max_batch_size: int, page_size: int, num_blocks: int):
    """A ``SequenceInfo`` of the fixture's generation with ``num_blocks`` KV pages of ``page_size`` tokens."""
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import SequenceInfo

    if generation(ad) == "cache_config":
        info = SequenceInfo(max_seq_len=max_seq_len, max_batch_size=max_batch_size, page_size=page_size)
        info.num_pages = num_blocks
        return info
    if generation(ad) == "batch_info":
        info = SequenceInfo(max_seq_len=max_seq_len, max_batch_size=max_batch_size, max_num_tokens=max_seq_len * max_batch_size, tokens_per_block=page_size)
    else:
        info = SequenceInfo(max_seq_len=max_seq_len, max_batch_size=max_batch_size, tokens_per_block=page_size)
    info.update_cache_information(num_blocks=num_blocks)
    return info


def get_arg(seq_info, name: str) -> torch.Tensor:
    """What a graph input named ``name`` receives: ``get_arg`` in the ``BatchInfo`` generation, the private
    ``_get_arg`` before it."""
    return seq_info.get_arg(name) if hasattr(seq_info, "batch_info") else seq_info._get_arg(name)


def page_size_of(seq_info) -> int:
    return getattr(seq_info, "tokens_per_block", None) or seq_info.page_size


def make_cache_config(ad, page_size: int, kv_dtype=None):
    """What the generation's insertion transform hands ``get_cache_initializers`` (``kv_dtype``: a torch
    dtype or None for "auto")."""
    if generation(ad) == "cache_config":
        from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import CacheConfig

        return CacheConfig(dtype=kv_dtype)
    from tensorrt_llm.llmapi.llm_args import KvCacheConfig

    return KvCacheConfig(tokens_per_block=page_size, dtype="auto" if kv_dtype is None else str(kv_dtype).split(".")[-1])


def allocate(initializer, sequence_info) -> torch.Tensor:
    """Allocate one cache the way the generation does: a resource handler's ``allocate`` or a closure."""
    return initializer.allocate(sequence_info) if hasattr(initializer, "allocate") else initializer(sequence_info)


def activate(descriptor, seq_info) -> None:
    """Activate what cache insertion activates for ``descriptor``: its standard metadata and the
    prepare op's inputs (upstream copies a SequenceInfo field only once it is active)."""
    for name in descriptor.get_standard_metadata_args():
        seq_info.activate_arg(name)
    prepare, _, _ = descriptor.get_prepare_extra_metadata_info(None)
    if prepare is not None:
        for arg in prepare._schema.arguments:
            if arg.name in seq_info.available_args:
                seq_info.activate_arg(arg.name)
