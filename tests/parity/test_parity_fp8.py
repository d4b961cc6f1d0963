"""quantize_fp8_weights on the tiny preset (CPU, bf16): every projection and the lm_head become
``linear_fp8`` with e4m3 weights, the bf16 projection weights are dropped, and prefill + decode logits stay
within FP8's error of the bf16 build's."""
import torch

from driver import Driver
from trtllm_flash.build import build_model
from trtllm_flash.llm_args import load_llm_args


def _build(fp8: bool):
    transforms = {"quantize_fp8_weights": {"enabled": fp8}, "gather_logits_before_lm_head": {"enabled": True}}
    args = load_llm_args([], model="tiny", device="cpu", dtype="bfloat16", max_batch_size=2, max_seq_len=128, transforms=transforms)
    return build_model(args.for_build(), progress=None)


def _ops(built, op):
    return [n for n in built.graph_module.graph.nodes if n.op == "call_function" and n.target == op.default]


@torch.no_grad()
def test_tiny_fp8_weights_close_to_bf16():
    bf16, fp8 = _build(False), _build(True)
    assert not _ops(fp8, torch.ops.trtllm_flash.linear) and len(_ops(fp8, torch.ops.trtllm_flash.linear_fp8)) >= 14
    weights = dict(fp8.graph_module.named_buffers()) | dict(fp8.graph_module.named_parameters())
    fp8_bytes = sum(t.numel() for t in weights.values() if t.dtype == torch.float8_e4m3fn)
    assert fp8_bytes > 0.5 * sum(t.numel() * t.element_size() for t in weights.values())  # most weight bytes are FP8
    tokens = torch.randint(3, 1000, (24,), generator=torch.Generator().manual_seed(0)).tolist()
    logits = {}
    for name, built in (("bf16", bf16), ("fp8", fp8)):
        driver = Driver(built, max_batch_size=2, max_seq_len=128, device="cpu")
        seq = driver.add(tokens)
        rows = [driver.step([(seq, len(tokens))])[0][-1]]
        for step in range(8):
            seq.tokens.append(tokens[step])  # the same teacher-forced tokens for both builds
            rows.append(driver.step([(seq, 1)])[0][-1])
        logits[name] = torch.stack(rows)
    err = ((logits["fp8"] - logits["bf16"]).norm() / logits["bf16"].norm()).item()
    assert err < 0.1, err
