"""End to end, per generation: our AutoDeploy model class on the tiny preset, exported as AutoDeploy exports
it, its source ops replaced by the stand-in's real cache-insertion transforms (the example YAML's
``insert_cached_*`` keys with our backends, through the generation's InferenceOptimizer), caches allocated
through the generation's cached-sequence interface, then prefill, chunked prefill and decode steps fed
through its SequenceInfo: every step's logits match the uncached model on the whole sequences."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import yaml
from ad_harness import generation, get_arg, nest
from torch.fx import GraphModule

from trtllm_flash.config import NemotronFlashConfig
from trtllm_flash.ops.interface import all_descriptors

YAML = "examples/auto_deploy/nemotron_flash_trtllm_flash.yaml"
MAX_SEQ, MAX_BATCH, PAGE, BLOCKS = 32, 3, 4, 24
#: (sequence id, tokens) per step; the sequence id is also its state slot
STEPS = [
    [(0, 6), (1, 3)],  # two prompts
    [(0, 3), (1, 1)],  # chunked-prefill continuation, a decode
    [(0, 1), (1, 1)],  # decode only
    [(0, 1), (1, 1)],
]
PAGES = {0: [9, 0, 4, 7], 1: [2, 5, 11]}


def _insert_config():
    from pathlib import Path

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / YAML).read_text())["transforms"]
    return {key: {"stage": "cache_init", **value} for key, value in config.items() if key.startswith("insert_cached_")}


def _interface(ad):
    from tensorrt_llm._torch.auto_deploy.custom_ops import attention_interface as ai
    from tensorrt_llm._torch.auto_deploy.shim.interface import CachedSequenceInterface

    if generation(ad) == "cache_config":
        cm = CachedSequenceInterface(ai.SequenceInfo(max_seq_len=MAX_SEQ, max_batch_size=MAX_BATCH, page_size=PAGE), device="cpu")
        cm.info.num_pages = BLOCKS
        factory = SimpleNamespace(get_cache_config=ai.CacheConfig)
        return cm, factory, cm.initialize_caches
    from tensorrt_llm.llmapi.llm_args import KvCacheConfig

    cm = CachedSequenceInterface(MAX_SEQ, MAX_BATCH, MAX_SEQ * MAX_BATCH, device="cpu", kv_cache_config=KvCacheConfig(tokens_per_block=PAGE))
    return cm, None, lambda: cm.initialize_resources(BLOCKS)


def test_tiny_model_runs_the_cached_ops_end_to_end_like_the_reference(autodeploy):
    from tensorrt_llm._torch.auto_deploy.transform.interface import transform_history
    from tensorrt_llm._torch.auto_deploy.transform.optimizer import InferenceOptimizer

    from trtllm_flash.autodeploy.factory import NemotronFlashAutoDeployModel

    config = NemotronFlashConfig.from_preset("tiny")
    torch.manual_seed(0)
    model = NemotronFlashAutoDeployModel._from_config(config).eval()
    totals = {seq: sum(n for step in STEPS for s, n in step if s == seq) for seq in PAGES}
    tokens = {seq: torch.randint(0, config.vocab_size, (totals[seq],), generator=torch.Generator().manual_seed(seq)).tolist() for seq in PAGES}
    with torch.no_grad():
        expected = {seq: model(input_ids=torch.tensor([ids]), position_ids=torch.arange(len(ids))[None])[0][0] for seq, ids in tokens.items()}
        example = torch.tensor([tokens[0][:4], tokens[1][:3] + [0]])
        dims = {0: torch.export.Dim("batch", max=MAX_BATCH * 8), 1: torch.export.Dim("seq", max=MAX_SEQ * MAX_BATCH)}
        kwargs = {"input_ids": example, "position_ids": torch.arange(4).expand(2, 4).contiguous()}
        exported = torch.export.export(model, (), kwargs, dynamic_shapes={"input_ids": dims, "position_ids": dims}, strict=False).module()
    gm = GraphModule(exported, exported.graph)
    gm.graph._codegen = torch.fx.graph.CodeGen()
    gm.recompile()

    cm, factory, allocate = _interface(autodeploy)
    insert = _insert_config()
    gm = InferenceOptimizer(factory, insert)(cm, gm)
    history = transform_history(gm)
    assert all(not history[key].skipped and history[key].num_matches > 0 for key in insert), history
    sources = {d.source_op() for d in all_descriptors().values()}
    assert not any(getattr(n.target, "overloadpacket", None) in sources for n in gm.graph.nodes), "a source op was left"
    assert allocate() > 0

    done = {seq: 0 for seq in PAGES}
    for step in STEPS:
        chunks = [(seq, done[seq], n) for seq, n in step]
        nest(cm.info, chunks, PAGES, tokens)
        with torch.no_grad():
            (logits,) = gm(**cm.named_args)
        logits = logits.reshape(-1, logits.shape[-1])
        start = 0
        for seq, pos, n in chunks:
            torch.testing.assert_close(logits[start : start + n], expected[seq][pos : pos + n], atol=2e-4, rtol=2e-4, msg=f"seq {seq} tokens {pos}..{pos + n}")
            start += n
            done[seq] += n
    assert get_arg(cm.info, "input_ids").numel() == len(STEPS[-1])
