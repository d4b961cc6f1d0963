"""A checkpoint directory in the published layout through every entry point -- load_checkpoint, from_pretrained
(the Hugging Face way), LLM, examples/auto_deploy/build_and_run_ad.py --model DIR, trtllm-flash serve DIR and
python -m trtllm_flash.generate --model DIR -- gives the eager reference's greedy tokens (CPU, fp32)."""
import runpy
import sys
from pathlib import Path

import httpx
import pytest
import torch

from trtllm_flash.llm import LLM, SamplingParams
from trtllm_flash.loading import load_checkpoint, load_tokenizer
from trtllm_flash.modeling import NemotronFlashForCausalLM

sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
from serve_subprocess import ServeProcess  # noqa: E402

ROOT = Path(__file__).parents[2]
PROMPT = "Hello, my name is"
NEW_TOKENS = 6
LIMITS = dict(max_batch_size=2, max_seq_len=64)


@pytest.fixture(scope="module")
def reference(published_dir, published_model):
    """(prompt ids, greedy new ids, their text) from the eager reference on the tokenizer's ids."""
    tokenizer = load_tokenizer(str(published_dir), published_model.config)
    ids = tokenizer.encode(PROMPT)
    assert ids[:5] == [320, 321, 322, 323, 1]  # memory tokens, then the checkpoint tokenizer's BOS
    new = published_model.generate(torch.tensor([ids]), NEW_TOKENS)[0, len(ids):].tolist()
    assert tokenizer.eos_token_id not in new  # (so every entry point runs all NEW_TOKENS steps)
    return ids, new, tokenizer.decode(new, skip_special_tokens=True)


@torch.no_grad()
def test_load_checkpoint(published_dir, reference):
    ids, new, _ = reference
    out = load_checkpoint(str(published_dir)).generate(torch.tensor([ids]), NEW_TOKENS)
    assert out[0, len(ids):].tolist() == new


@torch.no_grad()
def test_from_pretrained_the_hugging_face_way_on_real_token_ids(published_dir, reference):
    ids, new, _ = reference
    real = torch.tensor([ids[4:]])  # what the published tokenizer gives: BOS + text, no memory tokens
    out = NemotronFlashForCausalLM.from_pretrained(str(published_dir)).generate(real, NEW_TOKENS)
    assert out[0, real.shape[1]:].tolist() == new


def test_llm(published_dir, reference):
    ids, new, text = reference
    llm = LLM(str(published_dir), device="cpu", dtype="float32", progress=None, **LIMITS)
    output, = llm.generate([PROMPT], SamplingParams(max_tokens=NEW_TOKENS, temperature=0.0))
    assert output.prompt_token_ids == ids
    assert output.outputs[0].token_ids == new and output.outputs[0].text == text


def test_build_and_run_ad(published_dir, reference, capsys):
    _, _, text = reference
    argv = ["--model", str(published_dir), "--args.device", "cpu", "--args.dtype", "float32",
            "--args.max_seq_len", "64", "--prompt.batch_size", "1", "--prompt.queries", PROMPT,
            "--prompt.sp_kwargs", f"{{max_tokens: {NEW_TOKENS}, temperature: 0}}"]
    script = runpy.run_path(str(ROOT / "examples" / "auto_deploy" / "build_and_run_ad.py"))
    assert script["main"](argv) == 0
    assert f"[PROMPT 0] {PROMPT}: {text}\n" in capsys.readouterr().out


def test_trtllm_flash_serve(published_dir, reference):
    _, new, text = reference
    flags = [item for name, value in LIMITS.items() for item in (f"--{name}", str(value))]
    with ServeProcess(str(published_dir), flags) as server:
        name = httpx.get(server.base_url + "/v1/models", timeout=30).json()["data"][0]["id"]
        reply = httpx.post(server.base_url + "/v1/completions", timeout=120, json={
            "model": name, "prompt": PROMPT, "max_tokens": NEW_TOKENS, "temperature": 0}).json()
    assert reply["choices"][0]["text"] == text and reply["usage"]["completion_tokens"] == len(new)


def _python_m_generate(argv, monkeypatch):
    """``python -m trtllm_flash.generate ARGV`` in this process (the module's ``__main__`` path); its exit code."""
    monkeypatch.setattr(sys, "argv", ["trtllm_flash.generate", *argv])
    monkeypatch.delitem(sys.modules, "trtllm_flash.generate", raising=False)  # run it fresh, as `python -m` does
    with pytest.raises(SystemExit) as done:
        runpy.run_module("trtllm_flash.generate", run_name="__main__", alter_sys=True)
    return done.value.code


def test_python_m_trtllm_flash_generate(published_dir, reference, monkeypatch, capsys):
    _, _, text = reference
    argv = ["--model", str(published_dir), "--prompt", PROMPT, "--max-new-tokens", str(NEW_TOKENS), "--device", "cpu"]
    assert _python_m_generate(argv, monkeypatch) == 0
    assert capsys.readouterr().out == PROMPT + text + "\n"


@pytest.mark.parametrize("missing", ["/no/such/checkpoint", "./no/such/checkpoint"])
def test_a_missing_local_directory_says_no_such_directory(missing, monkeypatch, capsys):
    assert _python_m_generate(["--model", missing], monkeypatch) == 2
    assert capsys.readouterr().err == f"error: model '{missing}': no such directory\n"
    script = runpy.run_path(str(ROOT / "examples" / "auto_deploy" / "build_and_run_ad.py"))
    assert script["main"](["--model", missing]) == 2
    assert capsys.readouterr().err == f"error: --model {missing}: no such directory\n"
