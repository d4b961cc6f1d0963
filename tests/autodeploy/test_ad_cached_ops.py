"""Each family's cached op, called through its AutoDeploy descriptor on batches laid out the way
AutoDeploy lays them out (stand-in ``SequenceInfo``: full-capacity metadata buffers, ``[1, T]`` mixed
and ``[b, 1]`` decode-only token layout, prefill first), matches the source op run on whole sequences."""
from __future__ import annotations

import pytest
import torch
from ad_harness import CASES, require_family, activate, allocate, make_cache_config, make_sequence_info, nest, run_step, source_node

from trtllm_flash.ops.interface import get_descriptor

#: (sequence id, tokens) per step; the sequence id is also its state slot
STEPS = [
    [(0, 5), (1, 6), (2, 4)],  # three fresh prompts (mixed layout [1, T])
    [(0, 3), (1, 1), (2, 1)],  # chunked-prefill continuation, then two decodes
    [(0, 1), (1, 1), (2, 1)],  # decode only (layout [b, 1])
]
#: KV pages of each sequence; page 0 is an ordinary page under AutoDeploy's KVCacheManager
PAGES = {0: [5, 0, 7], 1: [3, 6], 2: [1, 4]}


@pytest.mark.parametrize("family", sorted(CASES))
def test_cached_op_matches_source_op(autodeploy, family):
    case = CASES[family]
    require_family(case)
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionRegistry

    from trtllm_flash.autodeploy import register

    register()  # idempotent; picks up a family module imported after the first registration

    ours = get_descriptor(case.name)
    descriptor = AttentionRegistry.get(case.name)
    totals = {seq: sum(n for s, n in (c for step in STEPS for c in step) if s == seq) for seq in PAGES}
    own = {seq: case.make(totals[seq], seed=seq) for seq in PAGES}
    # one layer: the per-layer args (weights, A, D, ...) of sequence 0 for every sequence
    full = {seq: [a if i in case.token_args else own[0][i] for i, a in enumerate(args)] for seq, args in own.items()}
    num_qkv = descriptor.get_num_qkv_args()
    node = source_node(ours.source_op(), full[0])

    seq_info = make_sequence_info(autodeploy, max_seq_len=16, max_batch_size=4, page_size=4, num_blocks=8)
    activate(descriptor, seq_info)
    initializers = descriptor.get_cache_initializers(node, make_cache_config(autodeploy, page_size=4))
    caches = [allocate(init, seq_info).zero_() for init in initializers.values()]

    done = {seq: 0 for seq in PAGES}
    for step in STEPS:
        chunks = [(seq, done[seq], n) for seq, n in step]
        nest(seq_info, chunks, PAGES)
        inputs = [
            torch.cat([full[seq][i][0, pos : pos + n] for seq, pos, n in chunks]) if i in case.token_args else full[0][i]
            for i in range(num_qkv)
        ]
        out = run_step(descriptor, node, seq_info, caches, inputs, case.token_args)
        out = out.reshape(-1, *out.shape[2:])
        start = 0
        for seq, pos, n in chunks:
            expected = ours.source_op()(*full[seq])[0, pos : pos + n]
            torch.testing.assert_close(out[start : start + n], expected, atol=case.atol, rtol=case.atol, msg=f"{family} seq {seq} tokens {pos}..{pos + n}")
            start += n
            done[seq] += n
