"""The mutation catalogue of :mod:`tools.mutate`: realistic one-line bugs, each a ``(file, old, new)`` edit.

``old`` must occur exactly once in ``file`` (the runner refuses a stale entry). ``tests`` is the subset of
the suite mapped to the code it breaks (run first, with ``-x``); the whole suite runs only when the subset
misses the bug.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class Mutation:
    name: str
    area: str  # ops | kernels | transforms | runtime | server | loading | modeling
    path: str
    old: str
    new: str
    tests: Tuple[str, ...]
    why: str  # the bug it stands for


PARITY_FAST = "tests/parity/test_parity_fast.py"

MUTATIONS = (
    # -- Triton / fla kernels (the fast paths) --------------------------------------------------------------
    Mutation("attn-decode-window-off-by-one", "kernels", "trtllm_flash/ops/attention/triton_decode.py",
             "lo = tl.maximum(pos - WINDOW + 1, 0)", "lo = tl.maximum(pos - WINDOW, 0)",
             ("tests/ops/attention", PARITY_FAST), "decode sees one key too many past the sliding window"),
    Mutation("conv-decode-no-shift", "kernels", "trtllm_flash/ops/causal_conv/kernels.py",
             "p_next = state + (slot * C + o_c[:, None]) * (K - 1) + (o_j + 1)[None, :]",
             "p_next = state + (slot * C + o_c[:, None]) * (K - 1) + o_j[None, :]",
             ("tests/ops/causal_conv", PARITY_FAST), "conv decode writes its window back unshifted"),
    Mutation("ssm-fast-decode-slot", "kernels", "trtllm_flash/ops/mamba/cached.py",
             "        slot_idx[num_prefill : num_prefill + num_decode],\n        dt_min,",
             "        slot_idx[:num_decode],\n        dt_min,",
             ("tests/ops/mamba", PARITY_FAST), "mixed batch: decodes read the prefills' state slots"),
    Mutation("softplus-no-dt-max", "kernels", "trtllm_flash/ops/mamba/softplus.py",
             "return tl.minimum(tl.maximum(soft, dt_min), dt_max)", "return tl.maximum(soft, dt_min)",
             ("tests/ops/mamba",), "the Mamba kernels drop the dt_max clamp"),
    Mutation("rms-norm-kernel-eps-0", "kernels", "trtllm_flash/ops/norms/kernels.py",
             "return _launch(x, out_dtype, eps, x.shape[-1], weight=weight, cast_before_weight=True)[0]",
             "return _launch(x, out_dtype, 0.0, x.shape[-1], weight=weight, cast_before_weight=True)[0]",
             ("tests/ops/norms",), "RMSNorm kernel ignores eps"),
    Mutation("add-rms-norm-kernel-eps-0", "kernels", "trtllm_flash/ops/norms/kernels.py",
             "return _launch(x, out_dtype, eps, x.shape[-1], residual=residual, weight=weight, cast_before_weight=True)",
             "return _launch(x, out_dtype, 0.0, x.shape[-1], residual=residual, weight=weight, cast_before_weight=True)",
             ("tests/ops/norms",), "add+RMSNorm kernel ignores eps"),
    Mutation("l2norm-kernel-eps-0", "kernels", "trtllm_flash/ops/norms/kernels.py",
             "return _launch(x, x.dtype, eps, x.shape[-1], mean=False)[0]",
             "return _launch(x, x.dtype, 0.0, x.shape[-1], mean=False)[0]",
             ("tests/ops/norms",), "L2 norm kernel ignores eps"),
    Mutation("norm-gemv-eps-dropped", "kernels", "trtllm_flash/ops/norm_linear/kernels.py",
             "b_rstd = tl.rsqrt(tl.sum(b_groups * b_groups, axis=1) / GROUP + eps)",
             "b_rstd = tl.rsqrt(tl.sum(b_groups * b_groups, axis=1) / GROUP)",
             ("tests/ops/norm_linear",), "grouped norm-GEMV ignores eps"),
    Mutation("delta-decode-beta-not-sigmoid", "kernels", "trtllm_flash/ops/delta_rule/decode_kernel.py",
             "b_beta = tl.sigmoid(b_beta).to(beta.dtype.element_ty).to(tl.float32)",
             "b_beta = b_beta.to(beta.dtype.element_ty).to(tl.float32)",
             ("tests/ops/delta_rule", PARITY_FAST), "fused delta-rule decode forgets the beta sigmoid"),
    Mutation("silu-mul-kernel-sigmoid-only", "kernels", "trtllm_flash/ops/silu_mul/kernels.py",
             "b_silu = (b_g * tl.sigmoid(b_g)).to(y.dtype.element_ty).to(tl.float32)",
             "b_silu = tl.sigmoid(b_g).to(y.dtype.element_ty).to(tl.float32)",
             ("tests/ops/silu_mul", PARITY_FAST), "SwiGLU kernel applies sigmoid, not silu"),
    Mutation("rope-kernel-sign", "kernels", "trtllm_flash/ops/rope/kernels.py",
             "o2 = x2 * b_c2[None, :] + x1 * b_s2[None, :]", "o2 = x2 * b_c2[None, :] - x1 * b_s2[None, :]",
             ("tests/ops/rope", PARITY_FAST), "RoPE kernel rotates the second half the wrong way"),
    # -- torch reference ops -------------------------------------------------------------------------------
    Mutation("mamba-reference-no-dt-max", "ops", "trtllm_flash/ops/mamba/reference.py",
             "return F.softplus(dt.float() + dt_bias.float()).clamp(min=dt_min, max=dt_max)",
             "return F.softplus(dt.float() + dt_bias.float()).clamp(min=dt_min)",
             ("tests/ops/mamba", "tests/model"), "the reference SSM drops the dt_max clamp"),
    Mutation("metadata-initial-states", "ops", "trtllm_flash/ops/metadata.py",
             '"use_initial_states": pos > 0,', '"use_initial_states": pos >= 0,',
             ("tests/runtime/test_staging.py", "tests/parity/test_parity.py"), "fresh prefills start from a stale state"),
    # -- modeling ------------------------------------------------------------------------------------------
    Mutation("attention-qk-norm-eps", "modeling", "trtllm_flash/modeling/attention.py",
             "QK_NORM_EPS = 1e-6", "QK_NORM_EPS = 1e-5",
             ("tests/model",), "attention q/k RMSNorm with the wrong eps"),
    Mutation("attention-window-mask", "modeling", "trtllm_flash/modeling/attention.py",
             "visible &= delta < sliding_window", "visible &= delta <= sliding_window",
             ("tests/model",), "eager attention sees one key too many past the window"),
    # -- transforms ----------------------------------------------------------------------------------------
    Mutation("fuse-a-log-drops-negation", "transforms", "trtllm_flash/transforms/fuse_mamba_a_log.py",
             "evaluate_param_subgraph(gm, neg).contiguous()", "evaluate_param_subgraph(gm, neg.args[0]).contiguous()",
             ("tests/transforms", "tests/parity/test_parity.py"), "the folded A is exp(A_log), not -exp(A_log)"),
    Mutation("fuse-add-rms-norm-eps-dropped", "transforms", "trtllm_flash/transforms/fuse_add_rms_norm.py",
             "(x, residual, weight, eps))", "(x, residual, weight, 0.0))",
             ("tests/transforms", "tests/parity/test_parity.py"), "the fused add+RMSNorm loses the norm's eps"),
    Mutation("attention-reference-window", "ops", "trtllm_flash/ops/attention/reference.py",
             "        mask &= delta < sliding_window", "        mask &= delta <= sliding_window",
             ("tests/ops/attention", "tests/parity/test_parity.py"), "the CPU attention ops see one key too many past the window"),
    Mutation("fuse-gemms-split-order", "transforms", "trtllm_flash/transforms/fuse_gemms.py",
             "part = gm.graph.call_function(operator.getitem, (split, index))",
             "part = gm.graph.call_function(operator.getitem, (split, len(linears) - 1 - index))",
             ("tests/transforms", "tests/parity/test_parity.py"), "fused projections handed out in the wrong order"),
    Mutation("attention-descriptor-drops-window", "transforms", "trtllm_flash/ops/attention/descriptor.py",
             'return [float(node_arg(source_node, 3, "scale")), int(node_arg(source_node, 4, "sliding_window", 0))]',
             'return [float(node_arg(source_node, 3, "scale")), 0]',
             ("tests/ops/attention", "tests/transforms", "tests/parity/test_parity.py"),
             "cache insertion loses the layer's sliding window"),
    # -- runtime -------------------------------------------------------------------------------------------
    Mutation("overlap-one-token-buffer", "runtime", "trtllm_flash/runtime/engine.py",
             "turn = self._launches % 2", "turn = 0",
             ("tests/runtime",), "the overlap scheduler reads back both steps through one buffer"),
    Mutation("sampling-top-p-keeps-all", "runtime", "trtllm_flash/runtime/sampling.py",
             "drop_sorted = mass_before >= top_p.unsqueeze(-1)", "drop_sorted = mass_before > top_p.unsqueeze(-1) + 1",
             ("tests/runtime",), "top_p never drops a token"),
    Mutation("sampling-temperature-ignored", "runtime", "trtllm_flash/runtime/sampling.py",
             "scaled = logits.index_select(0, index).float() / temperature", "scaled = logits.index_select(0, index).float()",
             ("tests/runtime",), "sampling ignores temperature"),
    Mutation("seed-ignored", "runtime", "trtllm_flash/runtime/sampling.py",
             "        generator.manual_seed(seed)", "        generator.seed()",
             ("tests/runtime", "tests/serve/test_serve_tiny.py"), "a request's seed is not used"),
    Mutation("stop-token-ids-ignored", "runtime", "trtllm_flash/runtime/engine.py",
             "if (token in self.eos_token_ids and not params.ignore_eos) or token in params.stop_token_ids:",
             "if token in self.eos_token_ids and not params.ignore_eos:",
             ("tests/runtime",), "stop_token_ids never stop generation"),
    Mutation("pages-not-freed", "runtime", "trtllm_flash/runtime/cache_manager.py",
             "                self._free_pages.append(page)", "                pass",
             ("tests/runtime",), "finished sequences leak their KV pages"),
    Mutation("staging-offset-before-align", "runtime", "trtllm_flash/runtime/staging.py",
             "total += -(-a.nbytes // _ALIGN) * _ALIGN", "total += a.nbytes // _ALIGN * _ALIGN",
             ("tests/runtime",), "packed inputs overlap when a size is not a multiple of 16"),
    # -- server --------------------------------------------------------------------------------------------
    Mutation("server-ignores-temperature", "server", "trtllm_flash/serve/generation.py",
             "temperature=body.temperature,", "temperature=1.0,",
             ("tests/serve",), "the server ignores the request's temperature"),
    Mutation("server-ignores-top-k-top-p", "server", "trtllm_flash/serve/generation.py",
             "top_k=body.top_k, top_p=body.top_p,", "top_k=0, top_p=1.0,",
             ("tests/serve",), "the server ignores top_k and top_p"),
    Mutation("server-ignores-seed", "server", "trtllm_flash/serve/generation.py",
             "seed=body.seed,", "seed=None,",
             ("tests/serve",), "the server ignores the request's seed"),
    Mutation("detokenizer-keeps-stop-string", "server", "trtllm_flash/serve/detokenizer.py",
             "self.text = self.text[:cut]", "self.text = self.text",
             ("tests/serve",), "the text is not cut before a stop string"),
    # -- loading -------------------------------------------------------------------------------------------
    Mutation("memory-tokens-dropped", "loading", "trtllm_flash/checkpoint.py",
             "weights[EMBED_KEY] = torch.cat([weights[EMBED_KEY], memory.to(weights[EMBED_KEY].dtype)], dim=0)",
             "weights[EMBED_KEY] = torch.cat([weights[EMBED_KEY], torch.zeros_like(memory).to(weights[EMBED_KEY].dtype)], dim=0)",
             ("tests/model", "tests/parity/test_parity.py"), "checkpoint memory tokens load as zeros"),
    Mutation("tie-embeddings-forgotten", "loading", "trtllm_flash/modeling/model.py",
             "        model.to_empty(device=device)\n        model.tie_embeddings()\n", "        model.to_empty(device=device)\n",
             ("tests/model", "tests/parity/test_parity.py"), "a tied lm_head is left unloaded"),
)
