"""The GPU code path run on the CPU under TRITON_INTERPRET=1: our Triton decode kernel and the whole fast
cached op in fp32 (fla's fused-recurrent prefill stands in for the chunk kernel, which needs a GPU)."""
import pytest
import torch
from delta_rule_cases import flattened_batch, random_inputs, split_tokens, token_range

import trtllm_flash.ops.delta_rule  # noqa: F401  (registers the ops)
from trtllm_flash.ops.delta_rule import delta_rule_reference, delta_rule_step
from trtllm_flash.ops.delta_rule.cached import cached_delta_rule_fast
from trtllm_flash.ops.delta_rule.decode_kernel import delta_rule_decode_

H, DK, DV, SCALE = 2, 12, 20, 0.3  # dv = 20 spans two 16-wide value blocks, the second masked


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2)])
def test_decode_kernel_matches_step_reference(dtype, tol):
    """Permuted slots in a pool of 7; q read through a strided view; other slots untouched."""
    n = 3
    q, k, v, beta = (t[0] for t in random_inputs(1, n, H, DK, DV, dtype=dtype, seed=1))
    q_wide = torch.zeros(n, H, DK + 4, dtype=dtype)
    q_wide[..., 2 : 2 + DK] = q
    q_view = q_wide[..., 2 : 2 + DK]
    pool = torch.randn(7, H, DK, DV)
    before = pool.clone()
    slots = torch.tensor([5, 0, 3])
    o = torch.full((n, H, DV), float("nan"), dtype=dtype)
    delta_rule_decode_(q_view, k, v, beta, o, pool, slots, SCALE)

    o_ref, state_ref = delta_rule_step(before[slots], q, k, v, beta, SCALE)
    torch.testing.assert_close(o.float(), o_ref, atol=tol, rtol=tol)
    torch.testing.assert_close(pool[slots], state_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pool[[1, 2, 4, 6]], before[[1, 2, 4, 6]], atol=0, rtol=0)


def test_fast_cached_op_mixed_batch():
    """Fresh prefill, continuing prefill, decodes; permuted slots in a pool of 8; fp32."""
    pool = torch.zeros(8, H, DK, DV)
    fresh, continued, dec_a, dec_b = (random_inputs(1, n, H, DK, DV, seed=10 + i) for i, n in enumerate([5, 3 + 4, 4, 3]))
    for seq, length, slot in ((continued, 3, 6), (dec_a, 3, 1), (dec_b, 2, 4)):
        pool[slot] = delta_rule_reference(*token_range(seq, 0, length), SCALE)[1][0]
    pool[2] = torch.randn(H, DK, DV)  # stale state in the fresh prefill's slot
    chunks = [fresh, token_range(continued, 3, 7), token_range(dec_a, 3, 4), token_range(dec_b, 2, 3)]
    slots = [2, 6, 1, 4]
    (q, k, v, beta), meta = flattened_batch(chunks, [0, 3, 3, 2], slots)
    o = cached_delta_rule_fast(
        q, k, v, beta, meta.batch_info_host, meta.cu_seqlen, meta.slot_idx, meta.use_initial_states, pool, SCALE
    )
    for seq, start, slot, o_seq in zip([fresh, continued, dec_a, dec_b], [0, 3, 3, 2], slots, split_tokens(o, [5, 4, 1, 1])):
        o_ref, state_ref = delta_rule_reference(*seq, SCALE)
        torch.testing.assert_close(o_seq, o_ref[0, start:], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pool[slot], state_ref[0], atol=1e-5, rtol=1e-5)
    assert pool[[0, 3, 5, 7]].abs().sum() == 0
