"""The transform registry: name -> (pass class, pydantic config class), and the stages they run in.

Mirrors AutoDeploy's ``transform/interface.py``: a pass is a :class:`BaseTransform` subclass registered
with :func:`register_transform`; its config class (a :class:`TransformConfig` subclass) holds ``stage``,
``enabled`` and the pass's own fields. Unlike AutoDeploy, unknown config keys are an error naming the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import total_ordering
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch.fx import GraphModule

from trtllm_flash.hints import closest_key_hint
from trtllm_flash.ops.interface import CacheSpec


@total_ordering
class Stage(str, Enum):
    """AutoDeploy's stage names, in the order they run."""

    EXPORT = "export"
    POST_EXPORT = "post_export"
    PATTERN_MATCHER = "pattern_matcher"
    SHARDING = "sharding"
    WEIGHT_LOAD = "weight_load"
    POST_LOAD_FUSION = "post_load_fusion"
    CACHE_INIT = "cache_init"
    COMPILE = "compile"

    def __lt__(self, other: "Stage") -> bool:
        order = list(Stage)
        return order.index(self) < order.index(other)


class TransformConfig(BaseModel):
    """Fields every pass has; subclasses add their own. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    stage: Stage
    enabled: bool = True


@dataclass(frozen=True)
class TransformInfo:
    """What one pass did: ``skipped`` when it found nothing to rewrite (or was disabled)."""

    skipped: bool
    num_matches: int = 0
    note: str = ""


@dataclass
class BuildContext:
    """What the passes share besides the graph.

    ``cache_specs`` gains one entry per cache placeholder the cache-insertion passes add;
    ``runner`` is set by ``compile_model`` to the callable that runs the graph (kwargs = placeholder names).
    """

    max_batch_size: int = 8
    max_seq_len: int = 2048
    page_size: int = 64
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    cache_specs: Dict[str, CacheSpec] = field(default_factory=dict)
    runner: Optional[Callable[..., torch.Tensor]] = None


class BaseTransform:
    """One pass. Subclasses set ``config_class`` and implement :meth:`apply`, which returns the
    (possibly new) module and what it did — AutoDeploy's ``_apply`` shape. The export pass takes the
    eager ``nn.Module``; every later pass takes and returns the ``GraphModule``.

    ``apply`` must either rewrite every match or none (log and return ``TransformInfo(skipped=True)``).
    """

    config_class: Type[TransformConfig] = TransformConfig
    name: str = ""

    def __init__(self, config: TransformConfig):
        self.config = config

    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        raise NotImplementedError


_REGISTRY: Dict[str, Type[BaseTransform]] = {}


def register_transform(name: str) -> Callable[[Type[BaseTransform]], Type[BaseTransform]]:
    """Class decorator: register a pass under ``name`` (unique)."""

    def wrap(cls: Type[BaseTransform]) -> Type[BaseTransform]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"transform {name!r} is already registered by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def get_transform(name: str) -> Type[BaseTransform]:
    if name not in _REGISTRY:
        raise KeyError(f"unknown transform {name!r}{closest_key_hint(name, _REGISTRY)}")
    return _REGISTRY[name]


def all_transforms() -> Dict[str, Type[BaseTransform]]:
    return dict(_REGISTRY)


def make_config(name: str, values: Dict[str, Any]) -> TransformConfig:
    """Validate one YAML entry into the pass's config class; an unknown key raises ``ValueError`` naming it."""
    config_class = get_transform(name).config_class
    unknown = sorted(set(values) - set(config_class.model_fields))
    if unknown:
        key = unknown[0]
        raise ValueError(
            f"transforms.{name}: unknown key {key!r}{closest_key_hint(key, config_class.model_fields)}"
        )
    try:
        return config_class(**values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"transforms.{name}.{where}: {first['msg']} (got {first.get('input')!r})") from None


def pipeline_order(configs: Dict[str, TransformConfig]) -> List[Tuple[str, TransformConfig]]:
    """Entries sorted by stage; within a stage the dict order is kept (AutoDeploy's stable sort)."""
    return sorted(configs.items(), key=lambda item: list(Stage).index(item[1].stage))
