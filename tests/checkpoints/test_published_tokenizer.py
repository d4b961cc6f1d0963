"""The checkpoint tokenizer's own post-processing is kept under the memory-token prefix; the default chat template
is the Instruct model's prompt format."""
import json
import shutil

import pytest
from tokenizers import Tokenizer, processors

from published import TINY_3B, write_published_tokenizer
from trtllm_flash.config import NemotronFlashConfig
from trtllm_flash.loading import load_tokenizer
from trtllm_flash.tokenizer import NemotronFlashTokenizer

CONFIG = NemotronFlashConfig(**TINY_3B)
MEMORY = list(range(320, 324))


@pytest.mark.parametrize("add_bos", [True, False])
def test_encoded_prompts_are_the_memory_tokens_then_the_checkpoint_tokenizers_own_output(tmp_path, add_bos):
    write_published_tokenizer(tmp_path, add_bos=add_bos)
    raw = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    tokenizer = load_tokenizer(str(tmp_path), CONFIG)
    text = "Hello, world"
    own = raw.encode(text).ids
    assert (own[0] == 1) == add_bos
    assert tokenizer.encode(text) == MEMORY + own
    assert tokenizer(text)["input_ids"] == MEMORY + own
    assert tokenizer.encode(text, add_special_tokens=False) == raw.encode(text, add_special_tokens=False).ids
    assert tokenizer.decode(tokenizer.encode(text), skip_special_tokens=True) == text
    # saved and loaded again: still exactly one memory prefix and the same BOS handling
    tokenizer.save_pretrained(tmp_path / "again")
    again = NemotronFlashTokenizer.load(str(tmp_path / "again"), CONFIG.num_memory_tokens, CONFIG.vocab_size)
    assert again.encode(text) == MEMORY + own


def test_the_default_chat_template_is_the_instruct_prompt_format(published_dir):
    tokenizer = load_tokenizer(str(published_dir), CONFIG)
    messages = [{"role": "user", "content": "What is 2+2?"}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == "User: What is 2+2?\nAssistant:"
    raw = Tokenizer.from_file(str(published_dir / "tokenizer.json"))
    assert tokenizer.apply_chat_template(messages, add_generation_prompt=True) == MEMORY + raw.encode(text).ids


def test_a_chat_template_in_tokenizer_config_wins(published_dir, tmp_path):
    path = tmp_path / "ckpt"
    shutil.copytree(published_dir, path)
    settings = json.loads((path / "tokenizer_config.json").read_text())
    settings["chat_template"] = "{% for m in messages %}<<{{ m['content'] }}>>{% endfor %}"
    (path / "tokenizer_config.json").write_text(json.dumps(settings))
    tokenizer = load_tokenizer(str(path), CONFIG)
    assert tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False) == "<<x>>"


def test_a_corrupt_tokenizer_json_names_the_file(published_dir, tmp_path):
    path = tmp_path / "ckpt"
    shutil.copytree(published_dir, path)
    (path / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    with pytest.raises(ValueError, match=f"^{path / 'tokenizer.json'} is not a valid tokenizer file: "):
        load_tokenizer(str(path), CONFIG)


def test_a_post_processor_that_cannot_carry_the_prefix_is_refused_naming_the_file(tmp_path):
    write_published_tokenizer(tmp_path)
    raw = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    raw.post_processor = processors.BertProcessing(("</s>", 2), ("<s>", 1))
    raw.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match=f"^{tmp_path / 'tokenizer.json'}: post_processor BertProcessing cannot carry"):
        load_tokenizer(str(tmp_path), CONFIG)


def test_special_tokens_written_as_added_token_objects_are_read(published_dir, tmp_path):
    path = tmp_path / "ckpt"
    shutil.copytree(published_dir, path)
    settings = json.loads((path / "tokenizer_config.json").read_text())
    settings["eos_token"] = {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False, "special": True}
    (path / "tokenizer_config.json").write_text(json.dumps(settings))
    assert load_tokenizer(str(path), CONFIG).eos_token_id == 2
    settings["eos_token"] = 2
    (path / "tokenizer_config.json").write_text(json.dumps(settings))
    with pytest.raises(ValueError, match="tokenizer_config.json: eos_token must be a string or an object"):
        load_tokenizer(str(path), CONFIG)
