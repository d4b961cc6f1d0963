"""Where one batch-1 decode step's time goes: engine step vs. graph replay, the replayed graph's GPU
time per op family (torch.profiler over graph replays, kernels grouped by name), and the GPU work an
engine step runs outside the graph (input copies, sampling, the token read-back: the engine steps'
profile minus the replays'). Kernels launched with PDL (the batch-1 GEMVs on Hopper) start while the
previous kernel runs, so the per-family times overlap and can sum to more than the replay's wall time.

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
    per_kernel, prof = _profile(lambda: graph.replay(), args.steps)
    per_family, kernels = defaultdict(float), defaultdict(int)
    for name, (us, count) in per_kernel.items():
        per_family[family(name)] += us
        kernels[family(name)] += count
    engine_kernels, _ = _profile(engine.step, args.steps)
    outside = []
    for name, (us, count) in sorted(engine_kernels.items(), key=lambda kv: -kv[1][0]):
        in_graph_us, in_graph_count = per_kernel.get(name, (0.0, 0))
        if count > in_graph_count:
            outside.append({"op": name[:60], "us_per_step": us - in_graph_us, "calls_per_step": count - in_graph_count})
    total = sum(per_family.values())
    rows = [{"family": f, "us_per_step": us, "share_pct": 100 * us / total, "kernels_per_step": kernels[f]}
            for f, us in sorted(per_family.items(), key=lambda kv: -kv[1])]
    rows.append({"family": "sum of kernel time", "us_per_step": total, "share_pct": 100.0, "kernels_per_step": sum(kernels.values())})
    rows.append({"family": "graph replay (wall)", "us_per_step": replay_ms * 1e3})
    rows.append({"family": "engine step (wall)", "us_per_step": step_ms * 1e3})
    meta = {"device": device_name(), "preset": args.preset, "backend": args.backend, "context": args.context}
    write_results(f"profile_decode_{args.preset}_{args.backend}", rows, ["family", "us_per_step", "share_pct", "kernels_per_step"], meta)
    outside.append({"op": "sum outside the graph", "us_per_step": sum(r["us_per_step"] for r in outside),
                    "calls_per_step": sum(r["calls_per_step"] for r in outside)})
    write_results(f"profile_decode_outside_graph_{args.preset}_{args.backend}", outside, ["op", "us_per_step", "calls_per_step"], meta)
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))


def _profile(fn, steps: int):
    """``{kernel or memcpy name: (GPU us per call of fn, launches per call)}`` over ``steps`` calls, and the profile."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    result = {}
    for event in prof.key_averages():
        total = event.device_time_total if hasattr(event, "device_time_total") else event.cuda_time_total
        if total > 0:
            result[event.key] = (total / steps, event.count // steps)
    return result, prof


if __name__ == "__main__":
    main()
