"""examples/train_demo.py, a few steps (the smoke test of the demo model's training), and its corpus cleaning.

The real corpus is Debian's python3.11-doc; CI need not have it, so the script runs on a small reST tree written
here in the same layout (``<section>/<name>.rst.txt``)."""
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from trtllm_flash.loading import load_model, load_tokenizer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))
import demo_corpus  # noqa: E402

SAMPLE = """.. _tut-sample:

*****************
A Sample Chapter
*****************

The :keyword:`while` loop runs as long as its condition stays true, and the
``break`` statement leaves it early; see :ref:`the loop section <tut-loops>`.

.. index::
   statement: while

For example::

   >>> while x < 10:
   ...     x += 1

* A *list* keeps its items in order, and :func:`len` counts them for you.

+-------+-------+
| table | cells |
+-------+-------+

:param x: a field list entry that is not prose at all
"""

WORDS = ("the module reads each line of the file and returns a list of strings that the caller may sort or "
         "join again before it writes them back to another file on the disk").split()


def prose(seed: int, paragraphs: int = 6) -> str:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(paragraphs):
        words = [WORDS[int(i)] for i in torch.randint(len(WORDS), (40,), generator=gen)]
        out.append(" ".join(words).capitalize() + ".")
    return "\n\n".join(out)


def load_script():
    spec = importlib.util.spec_from_file_location("train_demo", EXAMPLES / "train_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prose_paragraphs_keep_the_prose_and_drop_code_directives_headings_and_tables():
    assert demo_corpus.prose_paragraphs(SAMPLE) == [
        "The while loop runs as long as its condition stays true, and the break statement leaves it early; "
        "see the loop section.",
        "A list keeps its items in order, and len counts them for you.",
    ]


def test_held_out_documents_are_every_eighth_in_sorted_order(tmp_path):
    for i in range(10):
        section = ("tutorial", "howto")[i % 2]
        (tmp_path / section).mkdir(exist_ok=True)
        (tmp_path / section / f"doc{i}.rst.txt").write_text(prose(i, 1))
    corpus = demo_corpus.load_corpus(str(tmp_path))
    files = demo_corpus.source_files(str(tmp_path))
    assert files[0].startswith("tutorial/") and files[-1].startswith("howto/")  # SECTIONS order, then names
    assert corpus.held_out_files == [files[0], files[8]] and len(corpus.train_files) == 8
    assert corpus.record()["sha256"] == demo_corpus.load_corpus(str(tmp_path)).record()["sha256"]


def test_missing_sources_name_the_debian_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="python3.11-doc"):
        demo_corpus.load_corpus(str(tmp_path / "absent"))


def test_a_few_training_steps_write_a_checkpoint_that_loads_like_a_published_one(tmp_path):
    sources = tmp_path / "sources"
    for i in range(9):
        (sources / "library").mkdir(parents=True, exist_ok=True)
        (sources / "library" / f"m{i}.rst.txt").write_text(SAMPLE + "\n" + prose(i))
    out = tmp_path / "demo"
    report = load_script().main([
        "--out", str(out), "--sources-dir", str(sources), "--vocab-size", "300", "--steps", "3", "--batch-size", "2",
        "--seq-len", "80", "--eval-tokens", "160", "--eval-len", "80", "--log-every", "1",
    ])
    assert [entry["step"] for entry in report["log"]] == [1, 2, 3]
    assert all(math.isfinite(entry["loss"]) for entry in report["log"])
    ppl = report["perplexity"]
    assert all(math.isfinite(v) and v > 1 for v in ppl.values())
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "model.safetensors", "nemotron_flash_tokenizer.json", "tokenizer.json", "training.json"]
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["NemotronFlashForCausalLM"] and config["attn_implementation"] == "fused_mha"
    assert set(config["layer_types"]) == {"deltanet", "m2", "a", "f"} and config["sliding_window"] > 0
    model = load_model(str(out))
    tokenizer = load_tokenizer(str(out), model.config)
    assert model.config.vocab_size == 300 and len(tokenizer.memory_token_ids) == model.config.num_memory_tokens
    assert tokenizer.decode(tokenizer.encode("the module reads")) == "the module reads"
    recorded = json.loads((out / "training.json").read_text())
    assert recorded["data"]["held_out_files"] == ["library/m0.rst.txt", "library/m8.rst.txt"]
    assert recorded["perplexity"] == ppl
