"""The shipped ``nemotron-flash-demo`` checkpoint: published layout, package data, the same loading path as any
checkpoint directory, its training record, and readable text from the generate CLI's default."""
import fnmatch
import json
import os
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from trtllm_flash import generate
from trtllm_flash.checkpoint import LM_HEAD_KEY, MEMORY_KEY, PUBLISHED_CONFIG_KEYS, resolve_checkpoint_dir
from trtllm_flash.checkpoints import DEFAULT_MODEL, shipped_checkpoint_dir, shipped_names
from trtllm_flash.loading import load_model
from trtllm_flash.modeling import NemotronFlashForCausalLM

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
DEMO = shipped_checkpoint_dir("nemotron-flash-demo")


def test_the_name_resolves_to_the_package_directory_in_the_published_layout():
    assert DEFAULT_MODEL == "nemotron-flash-demo" and shipped_names() == ["nemotron-flash-demo"]
    assert resolve_checkpoint_dir("nemotron-flash-demo") == DEMO
    assert Path(DEMO).parent == ROOT / "trtllm_flash" / "checkpoints"
    config = json.loads((Path(DEMO) / "config.json").read_text())
    assert set(PUBLISHED_CONFIG_KEYS) <= set(config) and config["attn_implementation"] == "fused_mha"
    assert set(config["layer_types"]) == {"deltanet", "m2", "a", "f"}
    windows = [config["sliding_window"] if i not in config["global_attn_idx"] else 0
               for i, t in enumerate(config["layer_types"]) if t == "a"]
    assert 0 in windows and any(w > 0 for w in windows)  # full and sliding-window attention
    with safe_open(os.path.join(DEMO, "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        assert f.get_slice(MEMORY_KEY).get_shape() == [config["num_memory_tokens"], config["hidden_size"]]
    assert LM_HEAD_KEY not in keys and config["tie_word_embeddings"]


def test_every_shipped_file_is_package_data():
    """pyproject's package-data globs cover the shipped directory, so a non-editable install has it."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["trtllm_flash.checkpoints"]
    files = [str(p.relative_to(Path(DEMO).parent)) for p in Path(DEMO).iterdir()]
    assert files and all(any(fnmatch.fnmatch(name, g) for g in globs) for name in files), (files, globs)


def test_loading_goes_through_from_pretrained_like_any_checkpoint(monkeypatch):
    seen = []
    original = NemotronFlashForCausalLM.from_pretrained.__func__

    def spy(cls, directory, *args, **kwargs):
        seen.append(directory)
        return original(cls, directory, *args, **kwargs)

    monkeypatch.setattr(NemotronFlashForCausalLM, "from_pretrained", classmethod(spy))
    model = load_model("nemotron-flash-demo")
    assert seen == [DEMO] and model.config.num_memory_tokens > 0


def test_the_training_record_names_the_data_and_beats_both_baselines():
    record = json.loads((Path(DEMO) / "training.json").read_text())
    assert record["data"]["debian_package"] == "python3.11-doc" and "PSF" in record["data"]["license"]
    assert record["data"]["held_out_files"] and not set(record["data"]["held_out_files"]) & set(record["data"]["train_files"])
    ppl = record["perplexity"]
    assert ppl["trained"] < ppl["unigram"] / 2 and ppl["unigram"] < ppl["untrained"]


def test_the_generate_cli_default_prints_readable_text(capsys):
    text = generate.main(["--prompt", "A list is", "--max-new-tokens", "24", "--device", "cpu"])
    completion = text[len("A list is"):]
    assert capsys.readouterr().out == text + "\n"
    assert all(c.isprintable() or c == "\n" for c in completion) and len(completion.split()) >= 8
    assert sum(c.isalpha() or c.isspace() for c in completion) >= 0.85 * len(completion), completion
