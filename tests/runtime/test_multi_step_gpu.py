"""GPU: k decode steps per CUDA-graph replay give the greedy tokens of one step per replay (1B preset,
bf16, torch-cudagraph), and the k-step graphs leave the runner's static inputs as they found them.

The requests all arrive at once and are prefilled in the first step, so both runs compute every token
in the same kind of batch (the decode graph of the same size): bitwise the same logits. Requests that
join mid-stream are not compared this way on the GPU: with k = 1 a running request's tokens are then
computed in mixed prefill + decode batches (eager kernels), with k = 8 in the decode graph, and bf16
rounds the two differently (a random-weight model's top-2 margins are tiny, so greedy tokens can flip;
seen on the H200 at the 7th token). Joining mid-stream is checked token for token on the CPU in fp32
(tests/runtime/test_multi_step.py)."""
import pytest
import torch

from runtime_fakes import run_all
from trtllm_flash.sampling_params import SamplingParams

pytestmark = pytest.mark.gpu


@torch.no_grad()
def test_1b_k8_graph_matches_k1_token_for_token():
    from types import SimpleNamespace

    from trtllm_flash.build import build_model
    from trtllm_flash.llm_args import load_llm_args
    from trtllm_flash.runtime.engine import Engine

    settings = dict(model="nemotron-flash-1b", dtype="bfloat16", max_batch_size=4, max_seq_len=1024, max_num_tokens=512,
                    compile_backend="torch-cudagraph", cuda_graph_batch_sizes=[1, 2, 4],
                    kv_cache_config={"max_tokens": 4096, "reuse_memory_tokens": False})
    built = build_model(load_llm_args([], **settings).for_build(), progress=None)
    generator = torch.Generator().manual_seed(0)
    prompts = {f"r{i}": torch.randint(3, 1000, (n,), generator=generator).tolist() for i, n in enumerate((20, 150, 7))}
    params = {rid: SamplingParams(max_tokens=n, ignore_eos=True) for rid, n in zip(prompts, (70, 45, 61))}
    results = {}
    for k in (1, 8):
        engine = Engine(built, SimpleNamespace(eos_token_id=None), load_llm_args([], **settings, decode_steps_per_launch=k))
        results[k] = run_all(engine, prompts, params)
        assert engine.cache_manager.num_used_slots == 0
    for rid in prompts:
        assert len(results[8][rid]["tokens"]) == params[rid].max_tokens
        assert results[8][rid]["tokens"] == results[1][rid]["tokens"], rid
    runner = built.runner
    assert {k for _, k in runner._multi_graphs} == {8}  # the 8-step graphs were replayed
    static = runner._static
    assert not static.positions[0, static.live_rows:].any() and not static.input_pos[static.live_rows:].any()
