"""CUDA path at the real shapes (1B: 16 heads, 3B: 24 heads; dk = dv = 128) in bf16, vs the fp32 reference.

fla's chunk kernel keeps some intermediates (WY-transformed values) in bf16, so over thousands of tokens
it drifts from the fp32 token loop by ~1e-3 relative; outputs are held to 2 % relative L2 error and
states to 2 %. The decode kernel's prologue options are held to the unfused path (the l2norm op's Triton
kernel and torch.sigmoid ahead of the plain kernel) at 1e-3: both round to bf16 to nearest even, so only
reduction-order ulps can differ."""
import pytest
import torch
from delta_rule_cases import (
    L2NORM_EPS,
    flattened_batch,
    prologue,
    random_inputs,
    raw_inputs,
    run_cached,
    split_tokens,
    token_range,
)

import trtllm_flash.ops.delta_rule  # noqa: F401  (registers the ops)
from trtllm_flash.ops.delta_rule import delta_rule_reference, delta_rule_step
from trtllm_flash.ops.delta_rule.decode_kernel import delta_rule_decode_

pytestmark = pytest.mark.gpu
SHAPES = {"1b": 16, "3b": 24}
D = 128
SCALE = D**-0.5
REL_TOL = 2e-2


def assert_rel_close(actual, expected, rel=REL_TOL):
    err = (actual.float() - expected.float()).norm() / expected.float().norm().clamp_min(1e-12)
    assert err < rel, f"relative L2 error {err:.3e} > {rel}"
    assert torch.isfinite(actual).all()


@pytest.mark.parametrize("model", SHAPES)
def test_source_op_chunk_kernel(model):
    h = SHAPES[model]
    q, k, v, beta = random_inputs(2, 1000, h, D, D, dtype=torch.bfloat16, device="cuda", seed=0)
    o = torch.ops.trtllm_flash.delta_rule(q, k, v, beta, SCALE)
    o_ref, _ = delta_rule_reference(q, k, v, beta, SCALE)
    assert_rel_close(o, o_ref)


@pytest.mark.parametrize("model", SHAPES)
def test_packed_varlen_prefill_8k(model):
    """8192 packed tokens: fresh prompts and chunks continuing a cached state, permuted slots in a pool of 12."""
    h = SHAPES[model]
    lengths, starts, slots = [3001, 1, 2047, 1000, 2143], [0, 0, 300, 0, 77], [9, 2, 0, 11, 5]
    assert sum(lengths) == 8192
    seqs = [random_inputs(1, s + n, h, D, D, dtype=torch.bfloat16, device="cuda", seed=i) for i, (n, s) in enumerate(zip(lengths, starts))]
    pool = torch.zeros(12, h, D, D, device="cuda")
    for seq, start, slot in zip(seqs, starts, slots):
        if start:
            pool[slot] = delta_rule_reference(*token_range(seq, 0, start), SCALE)[1][0]
    pool[2] = 1.0  # stale state in a fresh prompt's slot must be ignored
    chunks = [token_range(seq, s, s + n) for seq, s, n in zip(seqs, starts, lengths)]
    inputs, meta = flattened_batch(chunks, starts, slots)
    o = run_cached(inputs, meta, pool, SCALE)
    for seq, start, slot, o_seq in zip(seqs, starts, slots, split_tokens(o, lengths)):
        o_ref, state_ref = delta_rule_reference(*seq, SCALE)
        assert_rel_close(o_seq, o_ref[0, start:])
        assert_rel_close(pool[slot], state_ref[0])


@pytest.mark.parametrize("model", SHAPES)
def test_batch_64_decode_in_a_cuda_graph(model):
    """Decode [64, 1, ...] on permuted slots of a pool of 80, captured once and replayed on new inputs."""
    h, n = SHAPES[model], 64
    pool = torch.randn(80, h, D, D, device="cuda") * 0.1
    slots = torch.randperm(79, device="cuda")[:n]
    q, k, v, beta = (t.transpose(0, 1).contiguous() for t in random_inputs(1, n, h, D, D, dtype=torch.bfloat16, device="cuda", seed=1))
    batch_info = torch.tensor([0, 0, n], dtype=torch.int32)
    cu = torch.arange(n + 1, dtype=torch.int32, device="cuda")
    use_init = torch.ones(n, dtype=torch.bool, device="cuda")

    def step():
        return torch.ops.trtllm_flash.cached_delta_rule(q, k, v, beta, batch_info, cu, slots, use_init, pool, SCALE)

    step()  # compile the kernel outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        o = step()
    new_inputs = random_inputs(1, n, h, D, D, dtype=torch.bfloat16, device="cuda", seed=2)
    for dst, src in zip((q, k, v, beta), new_inputs):
        dst.copy_(src.transpose(0, 1))
    before = pool.clone()
    graph.replay()
    o_ref, state_ref = delta_rule_step(before[slots], q[:, 0], k[:, 0], v[:, 0], beta[:, 0], SCALE)
    assert_rel_close(o[:, 0], o_ref, rel=1e-2)
    torch.testing.assert_close(pool[slots], state_ref, atol=1e-4, rtol=1e-4)
    untouched = torch.ones(80, dtype=torch.bool, device="cuda")
    untouched[slots] = False
    assert torch.equal(pool[untouched], before[untouched])


@pytest.mark.parametrize("n", [1, 4])
def test_decode_kernel_prologue_1b_shape(n):
    """l2norm(q), l2norm(k) and sigmoid(beta) inside the decode kernel vs applied outside, 1B shape, bf16."""
    h = SHAPES["1b"]
    q, k, v, b = (t[0] for t in raw_inputs(1, n, h, D, D, dtype=torch.bfloat16, device="cuda", seed=3))
    before = torch.randn(8, h, D, D, device="cuda") * 0.1
    pool, unfused_pool = before.clone(), before.clone()
    slots = torch.tensor([6, 1, 3, 0][:n], device="cuda")
    o, o_unfused = torch.empty(2, n, h, D, dtype=torch.bfloat16, device="cuda")
    delta_rule_decode_(q, k, v, b, o, pool, slots, SCALE, L2NORM_EPS, True)
    q_n, k_n, _, beta = prologue((q, k, v, b))
    delta_rule_decode_(q_n, k_n, v, beta, o_unfused, unfused_pool, slots, SCALE)
    assert_rel_close(o, o_unfused, rel=1e-3)
    assert_rel_close(pool - before, unfused_pool - before, rel=1e-3)
    assert torch.equal(pool[[2, 4, 5, 7]], before[[2, 4, 5, 7]])
