"""Tokenizer with Nemotron-Flash's memory tokens, and the byte-level tokenizer the presets use.

``NemotronFlashTokenizer`` pads the vocabulary up to the model's ``vocab_size`` with ``<dummy_i>`` tokens, adds
``<mem_0> .. <mem_{n-1}>`` with ids ``vocab_size .. vocab_size + n - 1``, prepends those ids to every encoded text
and drops them when decoding (MODEL.md "Meta (memory) tokens"). The checkpoint tokenizer's own post-processing
is kept: when its ``tokenizer.json`` adds a BOS, ``encode(text) == memory_token_ids + [bos] + ids(text)`` -- what
the Hugging Face pipeline (memory tokens prepended at the embedding level) and AutoDeploy's tokenizer produce.

Checkpoints without a chat template (the published Instruct model ships none) get :data:`DEFAULT_CHAT_TEMPLATE`,
the model card's prompt format ``"User: " + prompt + "\nAssistant:"``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from trtllm_flash.checkpoint import read_json

TOKENIZER_FILE = "tokenizer.json"
SETTINGS_FILE = "nemotron_flash_tokenizer.json"
PAD, BOS, EOS = "<pad>", "<s>", "</s>"

#: "User: ...\nAssistant: ...\n" turns (the model card's prompt format), ending with "Assistant:" for generation
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}System: {{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% else %}Assistant: {{ message['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def memory_token(i: int) -> str:
    return f"<mem_{i}>"


class NemotronFlashTokenizer(PreTrainedTokenizerFast):
    """A fast tokenizer padded to ``vocab_size_model`` entries, plus ``num_memory_tokens`` memory tokens.

    Attributes: ``memory_token_ids`` (list of ints), ``text_vocab_size`` (= the model's ``vocab_size``; ids below
    it are text/dummy tokens).
    """

    def __init__(self, *args: Any, num_memory_tokens: int = 0, vocab_size_model: int = 0, **kwargs: Any):
        super().__init__(*args, num_memory_tokens=num_memory_tokens, vocab_size_model=vocab_size_model, **kwargs)
        if num_memory_tokens < 0:
            raise ValueError(f"num_memory_tokens must be >= 0, got {num_memory_tokens}")
        base = len(self)
        vocab_size_model = vocab_size_model or base
        self.text_vocab_size = vocab_size_model
        dummies = [AddedToken(f"<dummy_{i}>", special=True) for i in range(base, vocab_size_model)]
        if dummies:
            self.add_tokens(dummies, special_tokens=True)
        memory = [memory_token(i) for i in range(num_memory_tokens)]
        if memory:
            self.add_tokens([AddedToken(t, special=True) for t in memory], special_tokens=True)
        self.memory_token_ids: List[int] = self.convert_tokens_to_ids(memory) if memory else []
        expected = list(range(vocab_size_model, vocab_size_model + num_memory_tokens))
        if self.memory_token_ids != expected:
            raise ValueError(f"memory token ids {self.memory_token_ids[:3]}... are not {expected[:3]}...: "
                             f"the tokenizer does not fit vocab_size_model {vocab_size_model}")
        if memory:
            own = json.loads(self._tokenizer.to_str()).get("post_processor")
            self._tokenizer.post_processor = _build_post_processor(
                with_memory_prefix(own, list(zip(memory, self.memory_token_ids))))
        if self.chat_template is None:
            self.chat_template = DEFAULT_CHAT_TEMPLATE

    def _decode(self, token_ids, skip_special_tokens: bool = False, **kwargs: Any) -> str:
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        memory = set(self.memory_token_ids)
        return super()._decode([t for t in token_ids if t not in memory], skip_special_tokens=skip_special_tokens, **kwargs)

    def apply_chat_template(self, conversation, add_generation_prompt: bool = False, tokenize: bool = True, **kwargs):
        """The rendered chat text (``tokenize=False``) or its ids with the memory-token prefix (a list of ints)."""
        kwargs.pop("return_dict", None)
        text = super().apply_chat_template(conversation, add_generation_prompt=add_generation_prompt,
                                           tokenize=False, **kwargs)
        return self.encode(text) if tokenize else text

    def save_pretrained(self, save_directory, **kwargs: Any):
        """``tokenizer.json`` + the memory-token settings (read back by :meth:`load`)."""
        os.makedirs(save_directory, exist_ok=True)
        self._tokenizer.save(os.path.join(save_directory, TOKENIZER_FILE))
        settings = {"vocab_size_model": self.text_vocab_size, "num_memory_tokens": len(self.memory_token_ids),
                    "chat_template": self.chat_template, "pad_token": self.pad_token, "bos_token": self.bos_token,
                    "eos_token": self.eos_token}
        with open(os.path.join(save_directory, SETTINGS_FILE), "w") as f:
            json.dump(settings, f, indent=2)
        return (os.path.join(save_directory, TOKENIZER_FILE),)

    @classmethod
    def load(cls, directory: str, num_memory_tokens: int, vocab_size_model: int) -> "NemotronFlashTokenizer":
        """From a directory holding ``tokenizer.json`` (and optionally ``tokenizer_config.json`` / our settings
        file, for the special tokens and a chat template). A missing or corrupt file is a ``ValueError`` naming it."""
        path = os.path.join(directory, TOKENIZER_FILE)
        if not os.path.isfile(path):
            raise ValueError(f"{path} is missing: a checkpoint directory needs a {TOKENIZER_FILE}")
        settings: Dict[str, Any] = {}
        for name in (SETTINGS_FILE, "tokenizer_config.json"):
            if os.path.isfile(os.path.join(directory, name)):
                values = read_json(os.path.join(directory, name))
                if not isinstance(values, dict):
                    raise ValueError(f"{os.path.join(directory, name)}: expected a JSON object, got {type(values).__name__}")
                settings = {**values, **settings}
        specials = {key: _special_token(settings[key], directory, key)
                    for key in ("pad_token", "bos_token", "eos_token") if settings.get(key) is not None}
        try:
            backend = Tokenizer.from_file(path)
        except Exception as err:  # noqa: BLE001  (tokenizers raises a bare Exception on a malformed file)
            reason = (str(err).strip().strip("'\"").splitlines() or [type(err).__name__])[0]
            raise ValueError(f"{path} is not a valid tokenizer file: {reason}") from None
        try:
            return cls(tokenizer_object=backend, num_memory_tokens=num_memory_tokens, vocab_size_model=vocab_size_model,
                       chat_template=settings.get("chat_template"), **specials)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


def _special_token(value: Any, directory: str, key: str) -> str:
    """A special token of ``tokenizer_config.json``: a string or an AddedToken object ``{"content": ...}``."""
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    if isinstance(value, str):
        return value
    raise ValueError(f"{os.path.join(directory, 'tokenizer_config.json')}: {key} must be a string or an object with "
                     f"a string 'content', got {value!r}")


def with_memory_prefix(post_processor: Optional[Dict[str, Any]], memory: List[tuple]) -> Dict[str, Any]:
    """The JSON of a post-processor that does what ``post_processor`` (the checkpoint's, JSON as in
    ``tokenizer.json``; ``None`` for none) does and then puts the ``memory`` tokens ``[(token, id), ...]`` first
    (pairs: before the first text only). Memory tokens already in a template are dropped first, so applying this
    twice (a saved and reloaded tokenizer) never doubles them. ``ValueError`` for a post-processor type whose
    output cannot be prefixed (anything but none, ``TemplateProcessing``, ``ByteLevel`` or a ``Sequence`` of those
    holding at most one template)."""
    names = {token for token, _ in memory}
    prefix = [{"SpecialToken": {"id": token, "type_id": 0}} for token, _ in memory]
    specials = {token: {"id": token, "ids": [i], "tokens": [token]} for token, i in memory}

    def prefixed(template: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        if template is None:
            template = {"type": "TemplateProcessing", "special_tokens": {},
                        "single": [{"Sequence": {"id": "A", "type_id": 0}}],
                        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}]}
        keep = {key: [p for p in template[key] if p.get("SpecialToken", {}).get("id") not in names]
                for key in ("single", "pair")}
        kept_specials = {k: v for k, v in template["special_tokens"].items() if k not in names}
        return {**template, "single": prefix + keep["single"], "pair": prefix + keep["pair"],
                "special_tokens": {**kept_specials, **specials}}

    kind = None if post_processor is None else post_processor.get("type")
    if kind is None:
        return prefixed(None)
    if kind == "TemplateProcessing":
        return prefixed(post_processor)
    steps = post_processor.get("processors", []) if kind == "Sequence" else [post_processor]
    others = {step.get("type") for step in steps} - {"TemplateProcessing", "ByteLevel"}
    templates = [i for i, step in enumerate(steps) if step.get("type") == "TemplateProcessing"]
    if kind not in ("Sequence", "ByteLevel") or others or len(templates) > 1:
        what = f"Sequence of {[step.get('type') for step in steps]}" if kind == "Sequence" else kind
        raise ValueError(f"post_processor {what} cannot carry the memory-token prefix (supported: none, "
                         f"TemplateProcessing, ByteLevel, a Sequence of them with at most one template)")
    steps = list(steps)
    if templates:
        steps[templates[0]] = prefixed(steps[templates[0]])
    else:
        steps.append(prefixed(None))
    return {"type": "Sequence", "processors": steps}


def _build_post_processor(post_processor: Dict[str, Any]):
    """A ``tokenizers`` post-processor object from its ``tokenizer.json`` form."""
    shell = json.loads(Tokenizer(models.BPE()).to_str())
    shell["post_processor"] = post_processor
    return Tokenizer.from_str(json.dumps(shell)).post_processor


def byte_level_backend() -> Tokenizer:
    """A byte-level tokenizer built in code: ``<pad>, <s>, </s>`` = 0, 1, 2, then the 256 bytes (ids 3..258)."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {PAD: 0, BOS: 1, EOS: 2}
    for char in sorted(alphabet):
        vocab[char] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([PAD, BOS, EOS])
    return backend


def byte_level_tokenizer(vocab_size: int, num_memory_tokens: int) -> NemotronFlashTokenizer:
    """The presets' tokenizer: :func:`byte_level_backend` padded to ``vocab_size`` plus the memory tokens."""
    if vocab_size < 259:
        raise ValueError(f"vocab_size {vocab_size} is too small for the byte-level tokenizer (needs >= 259)")
    return NemotronFlashTokenizer(tokenizer_object=byte_level_backend(), num_memory_tokens=num_memory_tokens,
                                  vocab_size_model=vocab_size, pad_token=PAD, bos_token=BOS, eos_token=EOS)
