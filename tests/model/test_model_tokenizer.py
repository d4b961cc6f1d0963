"""NemotronFlashTokenizer: vocabulary padding, memory-token prefix on encode, dropped on decode, chat template."""
import pytest

from trtllm_flash.tokenizer import NemotronFlashTokenizer, byte_level_backend, byte_level_tokenizer

VOCAB, MEMORY = 400, 3


@pytest.fixture(scope="module")
def tokenizer():
    return byte_level_tokenizer(VOCAB, MEMORY)


def test_vocab_is_padded_and_memory_ids_follow_it(tokenizer):
    assert len(tokenizer) == VOCAB + MEMORY
    assert tokenizer.memory_token_ids == [400, 401, 402]
    assert tokenizer.convert_ids_to_tokens(399) == "<dummy_399>"
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)


def test_encode_prepends_exactly_the_memory_ids_and_decode_drops_them(tokenizer):
    text = "Hello, wörld!"
    ids = tokenizer.encode(text)
    plain = tokenizer.encode(text, add_special_tokens=False)
    assert ids == [400, 401, 402] + plain and all(i < 259 for i in plain)
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer(text)["input_ids"] == ids


def test_default_chat_template(tokenizer):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "?"}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == "User: Hi\nAssistant: Yo\nUser: ?\nAssistant:"
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    assert ids == tokenizer.encode(text) and ids[:MEMORY] == tokenizer.memory_token_ids


def test_save_and_load_keep_ids_and_template(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    again = NemotronFlashTokenizer.load(str(tmp_path), MEMORY, VOCAB)
    assert again.encode("abc é") == tokenizer.encode("abc é")
    assert again.memory_token_ids == tokenizer.memory_token_ids and len(again) == len(tokenizer)
    assert again.chat_template == tokenizer.chat_template


def test_a_tokenizer_larger_than_the_model_vocab_is_refused():
    with pytest.raises(ValueError, match="vocab_size_model 100"):
        NemotronFlashTokenizer(tokenizer_object=byte_level_backend(), num_memory_tokens=2, vocab_size_model=100)
