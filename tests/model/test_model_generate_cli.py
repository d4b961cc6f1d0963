"""``python -m trtllm_flash.generate`` prints the prompt followed by the completion of the reference model."""
import torch

from trtllm_flash import generate
from trtllm_flash.console import printable
from trtllm_flash.loading import load_model, load_tokenizer


def test_cli_prints_prompt_and_greedy_completion(capsys):
    text = generate.main(["--model", "tiny", "--prompt", "Hello", "--max-new-tokens", "4", "--device", "cpu"])
    assert capsys.readouterr().out == printable(text) + "\n"
    model = load_model("tiny").eval()
    tokenizer = load_tokenizer("tiny", model.config)
    ids = torch.tensor([tokenizer.encode("Hello")])
    out = model.generate(ids, 4, eos_token_id=tokenizer.eos_token_id)
    assert text == "Hello" + tokenizer.decode(out[0, ids.shape[1]:].tolist(), skip_special_tokens=True)


def test_help_documents_every_option(capsys):
    import pytest

    with pytest.raises(SystemExit):
        generate.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--model", "--prompt", "--max-new-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--dtype", "--device"):
        assert flag in text
    assert text.count("default:") >= 9
