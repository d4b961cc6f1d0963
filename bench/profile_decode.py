"""Where one batch-1 decode step's time goes: engine step vs. graph replay, and the replayed graph's GPU
time per op family (torch.profiler over graph replays, kernels grouped by name).

    python -m bench.profile_decode [--preset nemotron-flash-1b] [--context 512] [--steps 64]
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from bench.common import device_name, time_cuda, write_results

#: kernel-name fragment -> op family (first match wins; the rest is "other")
FAMILIES = [
    ("_decode_split_kernel", "attention"), ("_decode_merge_kernel", "attention"), ("_store_kv_kernel", "attention"),
    ("_store_windows_kernel", "attention"), ("_ssm_decode_kernel", "mamba ssm"), ("_conv_decode_kernel", "causal conv"),
    ("_delta_rule_decode_kernel", "delta rule"), ("_row_norm_kernel", "norms"), ("_rope_kernel", "rope"),
    ("_silu_mul_kernel", "swiglu"), ("_gemv_kernel", "GEMM/GEMV"),
    ("nvjet", "GEMM/GEMV"), ("gemv", "GEMM/GEMV"), ("gemm", "GEMM/GEMV"), ("cutlass", "GEMM/GEMV"), ("xmma", "GEMM/GEMV"), ("splitK", "GEMM/GEMV"),
    ("elementwise", "elementwise (torch)"), ("reduce", "reductions (torch)"), ("index", "gather/scatter (torch)"),
    ("copy", "copies (torch)"), ("cat", "copies (torch)"),
]


def family(kernel_name: str) -> str:
    for fragment, name in FAMILIES:
        if fragment in kernel_name:
            return name
    return "other"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="nemotron-flash-1b")
    parser.add_argument("--context", type=int, default=512, help="tokens generated before measuring")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--backend", default="torch-cudagraph", choices=["torch-cudagraph", "torch-opt"])
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.profile_decode needs a CUDA GPU")
    from trtllm_flash.llm import LLM
    from trtllm_flash.sampling_params import SamplingParams

    llm = LLM(args.preset, dtype="bfloat16", compile_backend=args.backend, cuda_graph_batch_sizes=[1], max_batch_size=2,
              max_seq_len=args.context + 4 * args.steps + 512, kv_cache_config={"free_gpu_memory_fraction": 0.5}, progress=False)
    engine = llm.engine
    engine.add_request("p", llm.tokenizer("profile")["input_ids"], SamplingParams(max_tokens=args.context + 3 * args.steps, ignore_eos=True))
    for _ in range(args.context):
        engine.step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        engine.step()
    torch.cuda.synchronize()
    step_ms = (time.perf_counter() - start) / args.steps * 1e3
    graph = llm.built_model.runner.captured_graph(1)
    replay_ms = time_cuda(graph.replay, warmup=3, iters=args.steps)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(args.steps):
            graph.replay()
        torch.cuda.synchronize()
    per_family, kernels = defaultdict(float), defaultdict(int)
    for event in prof.key_averages():
        us = event.device_time_total / args.steps if hasattr(event, "device_time_total") else event.cuda_time_total / args.steps
        if us <= 0:
            continue
        per_family[family(event.key)] += us
        kernels[family(event.key)] += event.count // args.steps
    total = sum(per_family.values())
    rows = [{"family": f, "us_per_step": us, "share_pct": 100 * us / total, "kernels_per_step": kernels[f]}
            for f, us in sorted(per_family.items(), key=lambda kv: -kv[1])]
    rows.append({"family": "sum of kernel time", "us_per_step": total, "share_pct": 100.0, "kernels_per_step": sum(kernels.values())})
    rows.append({"family": "graph replay (wall)", "us_per_step": replay_ms * 1e3})
    rows.append({"family": "engine step (wall)", "us_per_step": step_ms * 1e3})
    write_results(f"profile_decode_{args.preset}_{args.backend}", rows, ["family", "us_per_step", "share_pct", "kernels_per_step"],
                  {"device": device_name(), "preset": args.preset, "backend": args.backend, "context": args.context})
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))


if __name__ == "__main__":
    main()
