"""Real 1B / 3B attention shapes in bf16 on the GPU against the fp32 reference: a mixed batch over 4k
prefixes, the 8k source prefill, an 8192-window ring past a full turn, and a CUDA-graph-captured decode."""
import pytest
import torch
from attention_cases import SCALE, assert_close, expected, histories, page_rows, paged_cache, ring_cache, run_step, step_metadata, store_prefix

from trtllm_flash.ops.attention import attention_reference
from trtllm_flash.ops.interface import window_pages

SHAPES = {"1b": (16, 4, 128), "3b": (24, 8, 128)}  # (q heads, kv heads, head_dim)
PAGE = 64
BF16 = torch.bfloat16
OP = torch.ops.trtllm_flash.cached_attention


def cuda_histories(lengths, model, seed=0):
    h, hkv, d = SHAPES[model]
    return [tuple(t.cuda() for t in hist) for hist in histories(lengths, BF16, seed, h, hkv, d)]


def cuda_cache(num_pages, model, window=0, num_slots=0):
    _, hkv, d = SHAPES[model]
    if window:
        return ring_cache(num_slots, window, PAGE, BF16, hkv, d, fill=0.0).cuda()
    return paged_cache(num_pages, PAGE, BF16, hkv, d, fill=0.0).cuda()


@pytest.mark.gpu
@pytest.mark.parametrize("model", list(SHAPES))
def test_mixed_batch_over_4k_prefixes(model):
    spans = [(0, 1000), (3000, 1037), (4095, 1), (4096, 1), (2500, 1), (1, 1)]
    slots = list(range(len(spans)))
    hist = cuda_histories([p + n for p, n in spans], model)
    rows = page_rows(len(spans), 70, 512)
    cache = cuda_cache(512, model)
    for i, (p, _) in enumerate(spans):
        store_prefix(cache, hist[i], p, rows[i], slots[i], 0)
    for out, h, span in zip(run_step(OP, hist, spans, slots, rows, cache, 0), hist, spans):
        assert_close(out, expected(h, span, 0), BF16)


@pytest.mark.gpu
@pytest.mark.parametrize("model", list(SHAPES))
def test_source_prefill_4k(model):
    h, hkv, d = SHAPES[model]
    q, k, v = (torch.randn(2, 4096, n, d, device="cuda", dtype=BF16) for n in (h, hkv, hkv))
    for window in (0, 1000):
        out = torch.ops.trtllm_flash.attention(q, k, v, SCALE, window)
        assert_close(out, attention_reference(q, k, v, SCALE, window), BF16)


@pytest.mark.gpu
@pytest.mark.parametrize("model", list(SHAPES))
def test_sliding_window_8192_ring_past_a_turn(model):
    window = 8192
    ring_tokens = window_pages(window, PAGE) * PAGE
    hist = cuda_histories([ring_tokens + 2000], model, seed=1)
    cache = cuda_cache(0, model, window, num_slots=3)
    p = 0
    for chunk in (4096, ring_tokens + 1000 - 4096):  # the second chunk crosses the window and wraps the ring
        out = run_step(OP, hist, [(p, chunk)], [1], None, cache, window)[0]
        assert_close(out[-256:], expected(hist[0], (p + chunk - 256, 256), window), BF16)
        p += chunk
    for _ in range(3):
        out = run_step(OP, hist, [(p, 1)], [1], None, cache, window, decode_layout=True)[0]
        assert_close(out, expected(hist[0], (p, 1), window), BF16)
        p += 1


@pytest.mark.gpu
@pytest.mark.parametrize("model", list(SHAPES))
def test_decode_captured_in_a_cuda_graph(model):
    h, hkv, d = SHAPES[model]
    batch, prefix = 8, 3000
    hist = cuda_histories([prefix + 2] * batch, model, seed=2)
    rows = page_rows(batch, 48, 400)
    cache = cuda_cache(400, model)
    for i in range(batch):
        store_prefix(cache, hist[i], prefix, rows[i], i, 0)
    m = step_metadata([(prefix, 1)] * batch, list(range(batch)), rows, "cuda")
    q = torch.stack([hh[0][prefix] for hh in hist])[:, None]
    k = torch.stack([hh[1][prefix] for hh in hist])[:, None]
    v = torch.stack([hh[2][prefix] for hh in hist])[:, None]
    args = (q, k, v, m.batch_info_host, m.cu_seqlen, m.input_pos, m.slot_idx, m.page_table, cache, SCALE, 0)
    OP(*args)  # warm-up compiles the kernels outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = OP(*args)
    for step in range(2):
        pos = prefix + step
        q.copy_(torch.stack([hh[0][pos] for hh in hist])[:, None])
        k.copy_(torch.stack([hh[1][pos] for hh in hist])[:, None])
        v.copy_(torch.stack([hh[2][pos] for hh in hist])[:, None])
        m.input_pos.fill_(pos)
        graph.replay()
        torch.cuda.synchronize()
        for i in range(batch):
            assert_close(out[i, 0], expected(hist[i], (pos, 1), 0)[0], BF16)
