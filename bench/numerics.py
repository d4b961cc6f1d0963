"""Numerics of the built model in bf16 and with FP8 weights, against an fp32 copy of the reference.

For each preset (random weights, rounded to bf16 once, so every variant computes the same function): the
fp32 reference greedily generates ``--steps`` tokens after a ``--prompt-len``-token random prompt; one
fp32 forward over prompt + generated tokens gives the exact logits of every step. The built model (bf16,
and bf16 with ``quantize_fp8_weights``) and the eager bf16 model are teacher-forced through the same
tokens (prefill, then one decode step per token, CUDA graphs). Per variant:

* ``max_rel_err``: the largest per-step ``max |logits - exact| / max |exact|``;
* ``rel_l2_err``: ``||logits - exact|| / ||exact||`` over all steps;
* ``greedy_agree``: steps whose argmax equals the fp32 reference's token.

    python -m bench.numerics [--presets nemotron-flash-1b nemotron-flash-3b] [--steps 64] [--prompt-len 96]
"""
from __future__ import annotations

import argparse
import copy
import gc

import torch

from bench.common import device_name, write_results

DEVICE = "cuda"  # the smoke test on the CPU sets "cpu"


@torch.no_grad()
def exact_run(eager32, prompt, steps: int):
    """``(generated tokens, exact logits [steps, V])`` of the fp32 reference."""
    ids = torch.tensor([prompt], device=DEVICE)
    out = eager32.generate(ids, max_new_tokens=steps)[0, len(prompt):].tolist()  # greedy
    full = prompt + out[:-1]  # the step-i logits come from the token before generated token i
    logits = eager32(torch.tensor([full], device=DEVICE), torch.arange(len(full), device=DEVICE)[None])[0].float()
    return out, logits[len(prompt) - 1 :]


@torch.no_grad()
def built_run(preset: str, fp8: bool, prompt, tokens):
    """Logits ``[steps, V]`` of the built model teacher-forced through ``tokens`` (batch-1 graphs)."""
    from trtllm_flash.build import build_model
    from trtllm_flash.llm_args import load_llm_args
    from trtllm_flash.ops.metadata import build_metadata
    from trtllm_flash.runtime.cache_manager import CacheManager

    seq_len = len(prompt) + len(tokens) + 16
    args = load_llm_args([], model=preset, dtype="bfloat16", max_batch_size=1, max_seq_len=seq_len, compile_backend="torch-cudagraph",
                         cuda_graph_batch_sizes=[1], transforms={"quantize_fp8_weights": {"enabled": fp8}})
    built = build_model(args.for_build(), progress=None)
    page = 16
    cache = CacheManager(built.cache_specs, 1, seq_len, page, num_pages=-(-seq_len // page) + 1, device=DEVICE)
    slot = cache.allocate_slot()
    assert cache.ensure_pages("s", seq_len)

    def forward(start: int, ids):
        meta = build_metadata([len(ids)], [start], [slot], cache.page_table(["s"]), device=DEVICE)
        return built.forward(torch.tensor(ids, device=DEVICE), torch.arange(start, start + len(ids), device=DEVICE), meta, cache.tensors,
                             torch.tensor([len(ids) - 1], device=DEVICE))[-1]

    rows = [forward(0, prompt)]
    for i, token in enumerate(tokens[:-1]):
        rows.append(forward(len(prompt) + i, [token]))
    result = torch.stack(rows)
    del built, cache
    gc.collect()
    torch.cuda.empty_cache()
    return result


def compare(name: str, logits: torch.Tensor, exact: torch.Tensor, tokens) -> dict:
    scale = exact.abs().amax(dim=1)
    per_step = (logits - exact).abs().amax(dim=1) / scale
    agree = sum(int(a) == t for a, t in zip(logits.argmax(dim=1).tolist(), tokens))
    return {"variant": name, "max_rel_err": per_step.max().item(), "rel_l2_err": ((logits - exact).norm() / exact.norm()).item(),
            "greedy_agree": agree, "steps": len(tokens)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["nemotron-flash-1b", "nemotron-flash-3b"])
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--prompt-len", type=int, default=96)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.numerics needs a CUDA GPU")
    from trtllm_flash.loading import load_model

    rows = []
    for preset in args.presets:
        eager16 = load_model(preset, dtype=torch.bfloat16, device=DEVICE, seed=0).eval()
        eager32 = copy.deepcopy(eager16).float()
        prompt = torch.randint(3, 1000, (args.prompt_len,), generator=torch.Generator().manual_seed(0)).tolist()
        tokens, exact = exact_run(eager32, prompt, args.steps)
        del eager32
        with torch.no_grad():
            full = prompt + tokens[:-1]
            eager_logits = eager16(torch.tensor([full], device=DEVICE), torch.arange(len(full), device=DEVICE)[None])[0].float()[len(prompt) - 1 :]
        del eager16
        gc.collect()
        torch.cuda.empty_cache()
        variants = [("eager reference bf16", eager_logits), ("built bf16", built_run(preset, False, prompt, tokens)),
                    ("built FP8 weights", built_run(preset, True, prompt, tokens))]
        rows.extend({"preset": preset, **compare(name, logits, exact, tokens)} for name, logits in variants)
    write_results("numerics", rows, ["preset", "variant", "max_rel_err", "rel_l2_err", "greedy_agree", "steps"],
                  {"device": device_name(), "prompt_len": args.prompt_len})


if __name__ == "__main__":
    main()
