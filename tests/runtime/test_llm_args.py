"""LlmArgs: YAML layering, dot overrides, closest-key errors, unhonoured keys, the upstream YAML."""
from __future__ import annotations

from pathlib import Path

import pytest

from trtllm_flash.llm_args import LlmArgs, load_llm_args, parse_dot_overrides

UPSTREAM_YAML = Path(__file__).resolve().parents[2] / "examples" / "auto_deploy" / "nemotron_flash.yaml"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_upstream_yaml_loads_with_upstream_values():
    args = load_llm_args([UPSTREAM_YAML])
    assert args.compile_backend == "torch-cudagraph"
    assert (args.max_batch_size, args.max_seq_len, args.max_num_tokens) == (384, 2097152, 8192)
    assert args.enable_chunked_prefill and args.model_factory == "NemotronFlashForCausalLM"
    assert args.cuda_graph_batch_sizes == [1, 2, 4, 8, 16, 24, 32, 64, 96, 128, 256, 320, 384]
    assert args.kv_cache_config.free_gpu_memory_fraction == 0.9 and not args.kv_cache_config.enable_block_reuse
    assert args.transforms == {"gather_logits_before_lm_head": {"enabled": True},
                               "fuse_mamba_a_log": {"stage": "post_load_fusion", "enabled": True}}


def test_yaml_files_merge_in_order_then_overrides_then_kwargs(tmp_path):
    first = _write(tmp_path, "a.yaml", "max_batch_size: 4\nmax_seq_len: 100\nkv_cache_config: {tokens_per_block: 8, free_gpu_memory_fraction: 0.5}\n"
                   "transforms: {fuse_gemms: {enabled: false}}\n")
    second = _write(tmp_path, "b.yaml", "max_seq_len: 200\nkv_cache_config: {tokens_per_block: 16}\ntransforms: {fuse_gemms: {stage: compile}}\n")
    args = load_llm_args([first, second], {"kv_cache_config.max_tokens": 640, "max_seq_len": 300}, max_batch_size=2)
    assert args.max_batch_size == 2  # kwargs win
    assert args.max_seq_len == 300  # overrides over YAML
    assert args.kv_cache_config.tokens_per_block == 16  # second file over first
    assert args.kv_cache_config.free_gpu_memory_fraction == 0.5  # nested keys merge
    assert args.kv_cache_config.max_tokens == 640
    assert args.transforms == {"fuse_gemms": {"enabled": False, "stage": "compile"}}


def test_dot_override_strings_are_yaml_typed():
    parsed = parse_dot_overrides(["cuda_graph_batch_sizes=[1, 2]", "kv_cache_config.tokens_per_block=16", "model=tiny", "enable_chunked_prefill=true"])
    assert parsed == {"cuda_graph_batch_sizes": [1, 2], "kv_cache_config": {"tokens_per_block": 16}, "model": "tiny", "enable_chunked_prefill": True}
    with pytest.raises(ValueError, match="key.subkey=value"):
        parse_dot_overrides(["max_batch_size"])


@pytest.mark.parametrize("data, message", [
    ({"max_batch_sizes": 3}, "unknown key 'max_batch_sizes'; did you mean 'max_batch_size'?"),
    ({"kv_cache_config": {"tokens_per_blok": 3}}, "unknown key 'kv_cache_config.tokens_per_blok'; did you mean 'tokens_per_block'?"),
    ({"kv_cache_config": {"max_snapshots": -1}}, "kv_cache_config.max_snapshots"),
    ({"dtype": "fp64"}, "dtype: Input should be"),
    ({"world_size": 2}, "world_size: must be 1"),
    ({"max_num_tokens": 0}, "max_num_tokens"),
    ({"model_factory": "LlamaForCausalLM"}, "not a model factory"),
    ({"device": "tpu"}, "not a device"),
])
def test_bad_values_are_one_line_errors(data, message):
    with pytest.raises(ValueError) as info:
        load_llm_args([], data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_yaml_that_does_not_parse_names_file_and_line(tmp_path):
    bad = _write(tmp_path, "bad.yaml", "max_batch_size: 4\nkv_cache_config: {tokens_per_block: 8\nmax_seq_len: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml:\d+: YAML does not parse") as info:
        load_llm_args([bad])
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="no such YAML file"):
        load_llm_args([tmp_path / "missing.yaml"])
    listing = _write(tmp_path, "list.yaml", "- a\n- b\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_llm_args([listing])


def test_unhonoured_keys_are_kept_and_reported():
    args = load_llm_args([UPSTREAM_YAML], {"max_batch_size": 8, "device": "cpu", "attn_backend": "flashinfer",
                                           "trust_remote_code": True, "kv_cache_config.dtype": "fp8"})
    notes = dict(args.unhonoured())
    assert "torch-cudagraph runs eagerly" in notes["compile_backend"]
    assert "[16, 24, 32, 64, 96, 128, 256, 320, 384]" in notes["cuda_graph_batch_sizes"]
    assert {"attn_backend", "trust_remote_code", "kv_cache_config.dtype", "kv_cache_config.free_gpu_memory_fraction"} <= set(notes)
    assert args.cuda_graph_batch_sizes[-1] == 384 and args.attn_backend == "flashinfer"  # kept as written
    built = args.for_build()
    assert built.cuda_graph_batch_sizes == [1, 2, 4, 8]
    assert built.attn_backend is None and built.device == "cpu"


def test_defaults_report_nothing_on_a_sized_cpu_cache():
    args = LlmArgs(device="cpu", kv_cache_config={"max_tokens": 1024})
    assert args.unhonoured() == []
    assert args.kv_cache_config.tokens_per_block == 32
    assert args.for_build().device == "cpu"


def test_graph_backends_on_the_cpu_are_reported_as_eager():
    args = load_llm_args([], {"compile_backend": "torch-opt", "device": "cpu"})
    assert args.for_build().compile_backend == "torch-opt"
    assert ("compile_backend", "torch-opt runs eagerly on the CPU (CUDA graphs need a GPU)") in args.unhonoured()


def test_model_dump_round_trips():
    args = load_llm_args([UPSTREAM_YAML], {"model": "tiny", "max_batch_size": 8})
    assert load_llm_args([], args.model_dump()) == args
