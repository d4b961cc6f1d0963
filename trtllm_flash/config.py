"""``NemotronFlashConfig``: the Hugging Face config of Nemotron-Flash (``model_type="nemotron_flash"``) and presets.

Every key of the published ``config.json`` loads. What happens to each:

* used: the keys of :data:`KEY_KINDS` (sizes, layer pattern, attention / RoPE / Mamba2 / FFN settings, memory
  tokens, norm eps, token ids); each is checked for its JSON type and range on construction, and a wrong one
  raises ``ValueError`` naming the key and the value (never a silent conversion or fallback).
* dropped: :data:`REMOTE_CODE_KEYS` -- ``attn_implementation`` (the remote code's kernel choice, ``"fused_mha"``;
  transformers would hand it to its attention dispatch and reject it) and ``layer_type`` (a list the remote code
  derives from ``layer_types`` and saves back).
* kept, not acted on: the remote code's leftovers (``attn_implementation_new``, ``hybrid_decoder_layer``,
  ``d_conv``, ``calc_logits_for_entire_prompt``, ``use_cache``, ``hidden_act``, ``mamba_dt_rank`` ...), transformers'
  bookkeeping (``architectures``, ``auto_map``, ``dtype`` / ``torch_dtype``, ``transformers_version``) and any
  unknown key (reported at debug level by :func:`report_unknown_keys`).

``layer_types`` holds one entry per decoder layer: ``"deltanet"`` (DeltaNet mixer), ``"m"`` / ``"m2"``
(Mamba2 mixer), ``"a"`` (attention mixer), ``"f"`` (FFN only). Mixer layers also carry an FFN when
``intermediate_size > 0``.
"""
from __future__ import annotations

import copy
import functools
import inspect
import logging
import math
from typing import Any, Dict, List, Mapping, Optional

import torch
from transformers import PretrainedConfig

logger = logging.getLogger(__name__)

LAYER_TYPES = ("deltanet", "m", "m2", "a", "f")
MAMBA_LAYER_TYPES = ("m", "m2")
MAMBA_TYPES = MAMBA_LAYER_TYPES
KQ_NORMS = ("rms", "none")
ROPE_TYPES = (None, "default", "ntk")
#: rope_type values the published remote code accepts that we refuse, with the reason
REFUSED_ROPE_TYPES = {
    "dynamic_ntk": "the published remote code rescales its RoPE base from the longest position seen so far in "
                   "the life of the module, so a token's rotation depends on earlier calls; use 'ntk' or null",
}
MLP_ACTIVATIONS = ("silu", "relu2")

#: published-config keys only the remote code acts on; dropped on construction (see the module docstring)
REMOTE_CODE_KEYS = ("attn_implementation", "layer_type")
#: keys the remote code's config writes that no published model acts on (kept as plain attributes, not reported)
REMOTE_CODE_LEFTOVERS = ("mamba_dt_rank", "mamba_conv_bias", "mamba_proj_bias", "mamba_inner_layernorms",
                         "use_mamba_kernels", "num_experts", "num_experts_per_tok", "output_router_logits",
                         "router_aux_loss_coef", "new_seq_length")

#: the JSON kind of every key the model uses: "int", "number", "bool", "str", "ints" (list of int),
#: "strs" (list of str), "token" (int or list of int); a trailing "?" allows null
KEY_KINDS: Dict[str, str] = {
    "vocab_size": "int", "hidden_size": "int", "intermediate_size": "int", "num_hidden_layers": "int",
    "layer_types": "strs?", "num_attention_heads": "int", "num_key_value_heads": "int?", "attn_hidden_size": "int",
    "kq_head_dim": "int", "v_head_dim": "int", "kq_norm": "str", "rope": "bool", "rope_theta": "number",
    "rope_type": "str?", "max_position_embeddings": "int", "orig_max_position_embeddings": "int?",
    "sliding_window": "int?", "global_attn_idx": "ints?", "mamba_d_state": "int", "mamba_d_conv": "int",
    "mamba_expand": "int", "mamba2_headdim": "int", "mlp_hidden_act": "str", "ffn_expand_ratio": "number?",
    "num_memory_tokens": "int", "rms_norm_eps": "number", "initializer_range": "number",
    "tie_word_embeddings": "bool", "pad_token_id": "token?", "bos_token_id": "token?", "eos_token_id": "token?",
}
_KIND_TEXT = {"int": "an integer", "number": "a number", "bool": "true or false", "str": "a string",
              "ints": "a list of integers", "strs": "a list of strings", "token": "an integer or a list of integers"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fits(value: Any, kind: str) -> bool:
    if kind.endswith("?"):
        return value is None or _fits(value, kind[:-1])
    if kind == "int":
        return _is_int(value)
    if kind == "number":
        return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "ints":
        return isinstance(value, (list, tuple)) and all(_is_int(v) for v in value)
    if kind == "strs":
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    if kind == "token":
        return _is_int(value) or _fits(value, "ints")
    raise AssertionError(f"unknown key kind {kind!r}")


def check_key_types(values: Mapping[str, Any]) -> None:
    """``ValueError`` naming the first key of :data:`KEY_KINDS` in ``values`` whose value has the wrong JSON type
    (``"hidden_size": "64"``, ``"rms_norm_eps": "tiny"``, ``"rope": "yes"``)."""
    for key, kind in KEY_KINDS.items():
        if key in values and not _fits(values[key], kind):
            text = _KIND_TEXT[kind.rstrip("?")] + (" or null" if kind.endswith("?") else "")
            raise ValueError(f"{key} must be {text}, got {values[key]!r}")


def report_unknown_keys(keys) -> List[str]:
    """The keys (of a config's extra keyword arguments) that neither we, the remote code's known leftovers nor
    transformers use; logged at debug level and returned (they stay on the config as plain attributes)."""
    unknown = sorted(set(keys) - _known_keys())
    if unknown:
        logger.debug("config keys trtllm-flash does not use (kept as attributes): %s", ", ".join(unknown))
    return unknown


def _check_dtype_keys(values: Mapping[str, Any]) -> None:
    """``dtype`` / ``torch_dtype`` (bookkeeping: the load dtype is the caller's) must still be something
    transformers can read: null, ``"auto"``, a ``torch.dtype`` or the name of one (else a ``ValueError``, not
    transformers' ``AttributeError``)."""
    for key in ("dtype", "torch_dtype"):
        value = values.get(key)
        if value is None or value == "auto" or isinstance(value, torch.dtype):
            continue
        if not isinstance(value, str) or not isinstance(getattr(torch, value, None), torch.dtype):
            raise ValueError(f"{key} must be null, 'auto' or a torch dtype name such as 'bfloat16', got {value!r}")


@functools.lru_cache(maxsize=None)
def _known_keys() -> frozenset:
    """Our constructor's keys, transformers' own config attributes and the remote code's known keys."""
    return frozenset(
        set(inspect.signature(NemotronFlashConfig.__init__).parameters) | set(PretrainedConfig().to_dict())
        | set(REMOTE_CODE_KEYS) | set(REMOTE_CODE_LEFTOVERS) | {"torch_dtype", "auto_map", "name_or_path"})


class NemotronFlashConfig(PretrainedConfig):
    """Nemotron-Flash hyper-parameters (MODEL.md "Config keys"). Defaults are the remote code's where they
    exist; the model values come from :meth:`from_preset` or a checkpoint's ``config.json``."""

    model_type = "nemotron_flash"

    def __init__(
        self,
        vocab_size: int = 65536,
        hidden_size: int = 4096,
        intermediate_size: int = 14336,
        num_hidden_layers: int = 32,
        layer_types: Optional[List[str]] = None,
        num_attention_heads: int = 32,
        num_key_value_heads: Optional[int] = 8,
        attn_hidden_size: int = -1,
        kq_head_dim: int = -1,
        v_head_dim: int = -1,
        kq_norm: str = "none",
        rope: bool = False,
        rope_theta: float = 10000.0,
        rope_type: Optional[str] = None,
        max_position_embeddings: int = 262144,
        orig_max_position_embeddings: Optional[int] = None,
        attention_dropout: float = 0.0,
        sliding_window: Optional[int] = None,
        global_attn_idx: Optional[List[int]] = None,
        mamba_d_state: int = 16,
        mamba_d_conv: int = 4,
        mamba_expand: int = 2,
        mamba2_headdim: int = 64,
        mlp_hidden_act: str = "silu",
        ffn_expand_ratio: Optional[float] = None,
        num_memory_tokens: int = 0,
        rms_norm_eps: float = 1e-6,
        initializer_range: float = 0.02,
        tie_word_embeddings: bool = False,
        pad_token_id: Optional[int] = 0,
        bos_token_id: Optional[int] = 1,
        eos_token_id: Optional[int] = 2,
        hidden_act: str = "silu",
        use_cache: bool = True,
        calc_logits_for_entire_prompt: bool = False,
        attn_implementation_new: str = "flash_attention_2",
        hybrid_decoder_layer: str = "mamba",
        d_conv: int = 4,
        **kwargs: Any,
    ):
        arguments = locals()
        check_key_types({key: arguments[key] for key in KEY_KINDS})
        for key in REMOTE_CODE_KEYS:
            kwargs.pop(key, None)
        _check_dtype_keys(kwargs)
        report_unknown_keys(kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_attention_heads if num_key_value_heads is None else num_key_value_heads
        self.attn_hidden_size = attn_hidden_size
        self.kq_head_dim = kq_head_dim
        self.v_head_dim = v_head_dim
        self.kq_norm = kq_norm
        self.rope = rope
        self.rope_theta = rope_theta
        self.rope_type = rope_type
        self.max_position_embeddings = max_position_embeddings
        self.orig_max_position_embeddings = orig_max_position_embeddings
        self.attention_dropout = attention_dropout
        self.sliding_window = sliding_window
        self.global_attn_idx = list(global_attn_idx or [])
        self.mamba_d_state = mamba_d_state
        self.mamba_d_conv = mamba_d_conv
        self.mamba_expand = mamba_expand
        self.mamba2_headdim = mamba2_headdim
        self.mlp_hidden_act = mlp_hidden_act
        self.ffn_expand_ratio = ffn_expand_ratio
        self.num_memory_tokens = num_memory_tokens
        self.rms_norm_eps = rms_norm_eps
        self.initializer_range = initializer_range
        self.hidden_act = hidden_act
        self.use_cache = use_cache
        self.calc_logits_for_entire_prompt = calc_logits_for_entire_prompt
        self.attn_implementation_new = attn_implementation_new
        self.hybrid_decoder_layer = hybrid_decoder_layer
        self.d_conv = d_conv
        super().__init__(
            tie_word_embeddings=tie_word_embeddings,
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            **kwargs,
        )
        # set after the base init: its strict validator only accepts the layer-type names of transformers' models
        self.layer_types = list(layer_types) if layer_types is not None else ["a"] * num_hidden_layers
        self.check()

    # ----------------------------------------------------------------- derived sizes
    @property
    def attention_hidden(self) -> int:
        """Width split into attention heads: ``attn_hidden_size`` when > 0, else ``hidden_size``."""
        return self.attn_hidden_size if self.attn_hidden_size > 0 else self.hidden_size

    @property
    def head_dim(self) -> int:
        """Attention q/k head dim (``kq_head_dim`` when > 0)."""
        return self.kq_head_dim if self.kq_head_dim > 0 else self.attention_hidden // self.num_attention_heads

    @property
    def attention_v_head_dim(self) -> int:
        """Attention value head dim (``v_head_dim`` when > 0)."""
        return self.v_head_dim if self.v_head_dim > 0 else self.attention_hidden // self.num_attention_heads

    @property
    def value_head_dim(self) -> int:
        """Attention value head dim (``v_head_dim`` when > 0)."""
        return self.attention_v_head_dim

    @property
    def mixer_has_ffn(self) -> bool:
        """Mixer layers carry their own FFN when ``intermediate_size > 0``."""
        return self.intermediate_size > 0

    @property
    def deltanet_head_dim(self) -> int:
        """DeltaNet key and value head dim: ``hidden_size / num_attention_heads`` (expand_k = expand_v = 1)."""
        return self.hidden_size // self.num_attention_heads

    @property
    def ffn_dim(self) -> int:
        """FFN width: ``int(ffn_expand_ratio * hidden) // 128 * 128`` when the ratio is set, else ``intermediate_size``."""
        if self.ffn_expand_ratio is not None:
            return int(self.ffn_expand_ratio * self.hidden_size) // 128 * 128
        return self.intermediate_size

    @property
    def mamba_d_inner(self) -> int:
        return self.mamba_expand * self.hidden_size

    @property
    def mamba_num_heads(self) -> int:
        return self.mamba_d_inner // self.mamba2_headdim

    @property
    def mamba_conv_dim(self) -> int:
        """Channels of the Mamba2 short conv: x, B and C (one group)."""
        return self.mamba_d_inner + 2 * self.mamba_d_state

    @property
    def vocab_with_memory(self) -> int:
        """Rows of the embedding table: the vocabulary then the memory tokens."""
        return self.vocab_size + self.num_memory_tokens

    def layer_has_ffn(self, layer_idx: int) -> bool:
        """``"f"`` layers always; mixer layers when ``intermediate_size > 0``."""
        return self.layer_types[layer_idx] == "f" or self.intermediate_size > 0

    def layer_window(self, layer_idx: int) -> int:
        """Sliding window of attention layer ``layer_idx`` (0 = full attention): ``sliding_window`` unless the
        layer is in ``global_attn_idx``. With window ``w`` a query at position i sees keys i-w+1 .. i."""
        if not 0 <= layer_idx < self.num_hidden_layers or self.layer_types[layer_idx] != "a":
            raise ValueError(f"layer_idx {layer_idx} is not an attention layer (layer_types={self.layer_types})")
        if not self.sliding_window or layer_idx in self.global_attn_idx:
            return 0
        return int(self.sliding_window)

    # ----------------------------------------------------------------- validation
    def check(self) -> None:
        """Raise ``ValueError`` naming the key and value when a value has the wrong type or range or the
        hyper-parameters do not fit together."""
        check_key_types({key: getattr(self, key) for key in KEY_KINDS})
        types = self.layer_types
        if len(types) != self.num_hidden_layers:
            raise ValueError(f"layer_types has {len(types)} entries but num_hidden_layers is {self.num_hidden_layers}")
        for i, t in enumerate(types):
            if t not in LAYER_TYPES:
                raise ValueError(f"layer_types[{i}] = {t!r} is not one of {LAYER_TYPES}")
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                    "max_position_embeddings", "rms_norm_eps"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)!r}")
        for key in ("num_memory_tokens", "intermediate_size"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)!r}")
        if "deltanet" in types and self.hidden_size % self.num_attention_heads:
            raise ValueError(f"num_attention_heads {self.num_attention_heads} does not divide hidden_size {self.hidden_size} (DeltaNet heads)")
        if "a" in types:
            self._check_attention()
        if any(t in MAMBA_LAYER_TYPES for t in types):
            for key in ("mamba_d_state", "mamba_d_conv", "mamba_expand", "mamba2_headdim"):
                if getattr(self, key) < 1:
                    raise ValueError(f"{key} must be >= 1, got {getattr(self, key)!r}")
            if self.mamba_d_inner % self.mamba2_headdim:
                raise ValueError(f"mamba2_headdim {self.mamba2_headdim} does not divide mamba_expand * hidden_size = {self.mamba_d_inner}")
        if self.mlp_hidden_act not in MLP_ACTIVATIONS:
            raise ValueError(f"mlp_hidden_act {self.mlp_hidden_act!r} is not one of {MLP_ACTIVATIONS}")
        if ("f" in types or self.intermediate_size > 0) and self.ffn_dim <= 0:
            raise ValueError(
                f"FFN layers need a positive width, got ffn_dim {self.ffn_dim} "
                f"(intermediate_size={self.intermediate_size}, ffn_expand_ratio={self.ffn_expand_ratio})"
            )
        for i in self.global_attn_idx:
            if not isinstance(i, int) or not 0 <= i < self.num_hidden_layers:
                raise ValueError(f"global_attn_idx entry {i!r} is out of range for {self.num_hidden_layers} layers")
            if types[i] != "a":
                raise ValueError(f"global_attn_idx entry {i} names layer type {types[i]!r}, not an attention layer 'a'")
        if self.sliding_window is not None and (not isinstance(self.sliding_window, int) or self.sliding_window < 0):
            raise ValueError(f"sliding_window must be None or an int >= 0, got {self.sliding_window!r}")

    def _check_attention(self) -> None:
        heads, kv_heads = self.num_attention_heads, self.num_key_value_heads
        if self.kq_head_dim <= 0 or self.v_head_dim <= 0:
            if self.attention_hidden % heads:
                raise ValueError(f"num_attention_heads {heads} does not divide the attention width {self.attention_hidden}")
        if heads % kv_heads:
            raise ValueError(f"num_key_value_heads {kv_heads} does not divide num_attention_heads {heads}")
        if self.kq_norm not in KQ_NORMS:
            raise ValueError(f"kq_norm {self.kq_norm!r} is not one of {KQ_NORMS}")
        if self.rope_type in REFUSED_ROPE_TYPES:
            raise ValueError(f"rope_type {self.rope_type!r} is not supported: {REFUSED_ROPE_TYPES[self.rope_type]}")
        if self.rope_type not in ROPE_TYPES:
            raise ValueError(f"rope_type {self.rope_type!r} is not one of {ROPE_TYPES}")
        if self.rope and self.rope_theta <= 0:
            raise ValueError(f"rope_theta must be > 0, got {self.rope_theta!r}")
        if self.rope and self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head dim, got {self.head_dim}")
        if self.rope and self.rope_type == "ntk" and not (self.orig_max_position_embeddings or 0) > 0:
            raise ValueError(f"rope_type 'ntk' needs orig_max_position_embeddings > 0, got {self.orig_max_position_embeddings!r}")

    def validate(self) -> None:
        """transformers' strict validators (run again at save time) minus its layer-type-name check, then ours."""
        for validator in PretrainedConfig.__class_validators__:
            if validator.__name__ != "validate_layer_type":
                validator(self)
        self.check()

    # ----------------------------------------------------------------- presets
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "NemotronFlashConfig":
        """The config of a preset (see :func:`preset_names`), with keys replaced by ``overrides``."""
        if name not in PRESETS:
            raise ValueError(f"preset {name!r} is unknown; presets: {preset_names()}")
        values = copy.deepcopy(PRESETS[name])
        values.update(overrides)
        return cls(**values)


def _block_pattern(blocks: List[str]) -> List[str]:
    """``["deltanet", "a"]`` -> ``[deltanet, f, m2, f, a, f, m2, f]``: each block is mixer-FFN-Mamba2-FFN."""
    return [layer for mixer in blocks for layer in (mixer, "f", "m2", "f")]


_COMMON: Dict[str, Any] = dict(
    vocab_size=131072,
    intermediate_size=0,
    ffn_expand_ratio=3,
    mlp_hidden_act="silu",
    kq_norm="none",
    rope=True,
    rope_theta=10000.0,
    mamba_expand=2,
    mamba2_headdim=64,
    mamba_d_state=128,
    mamba_d_conv=4,
    num_memory_tokens=256,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    max_position_embeddings=262144,
    attn_implementation_new="fused_mha",
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)

#: name -> config keys. ``tiny`` is a small random model for CPU tests. The 3B values are the published
#: config's where known; ASSUMED (unpublished, chosen to be consistent with the 2.7 B / 0.96 B parameter
#: counts): 3B heads 24 / kv heads 8, memory tokens 256, rms_norm_eps 1e-6; 1B: its whole layer pattern
#: ([deltanet, a, deltanet, a, deltanet, deltanet] blocks), 16 heads / 4 kv heads, ffn_expand_ratio 3,
#: Mamba2 expand 2 / headdim 64 / state 128, NTK RoPE with orig_max_position_embeddings 4096 and
#: max_position_embeddings 32768. The 3B-TP has no published checkpoint: 3B + window 8192 on attention
#: layers 4 and 20, layer 12 global.
PRESETS: Dict[str, Dict[str, Any]] = {
    "tiny": dict(
        vocab_size=1024,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=7,
        layer_types=["deltanet", "a", "m2", "f", "a", "deltanet", "m2"],
        num_attention_heads=4,
        num_key_value_heads=2,
        kq_norm="rms",
        rope=True,
        rope_theta=10000.0,
        sliding_window=16,
        global_attn_idx=[4],
        mamba_expand=2,
        mamba2_headdim=16,
        mamba_d_state=8,
        mamba_d_conv=4,
        mlp_hidden_act="silu",
        num_memory_tokens=4,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    ),
    "nemotron-flash-1b": dict(
        _COMMON,
        hidden_size=2048,
        num_hidden_layers=24,
        layer_types=_block_pattern(["deltanet", "a", "deltanet", "a", "deltanet", "deltanet"]),
        num_attention_heads=16,
        num_key_value_heads=4,
        rope_type="ntk",
        orig_max_position_embeddings=4096,
        max_position_embeddings=32768,
    ),
    "nemotron-flash-3b": dict(
        _COMMON,
        hidden_size=3072,
        num_hidden_layers=36,
        layer_types=_block_pattern(["deltanet", "a"] * 3 + ["deltanet"] * 3),
        num_attention_heads=24,
        num_key_value_heads=8,
    ),
}
PRESETS["nemotron-flash-3b-tp"] = dict(PRESETS["nemotron-flash-3b"], sliding_window=8192, global_attn_idx=[12])


def preset_names() -> List[str]:
    return sorted(PRESETS)
