"""STAND-IN of ``tensorrt_llm/_torch/auto_deploy/transform/interface.py`` (the 30.7k-char revision read
for the research notes; ``_apply`` shape also seen in ``AD/transform/library/fuse_mamba_a_log.py``, stored
version 4186012271):

* ``Stages`` (ordered enum, same values and order), ``SharedConfig(local_rank=0, world_size=1)``;
* ``TransformConfig`` (pydantic, ``extra="allow"``, ``stage`` mandatory, ``enabled``, ``run_per_gm``, ...);
* ``TransformInfo`` (frozen: ``skipped``, ``num_matches``, ``is_clean``, ``has_valid_shapes``);
* ``BaseTransform``: ``__init__(config)`` re-validates into ``get_config_class()``; ``__call__(gm, cm,
  factory, shared_config)`` skips when disabled, else calls ``_apply(gm, cm, factory, shared_config)``
  (per-GraphModule path only — the adapter's passes use it);
* ``TransformRegistry``: ``register(name)`` sets ``_transform_key`` and silently replaces, ``get`` raises
  ``KeyError``, ``get_config_class``, ``has``.
"""
from enum import Enum
from functools import total_ordering
from typing import Dict, Optional, Type

from pydantic import BaseModel, ConfigDict, Field


@total_ordering
class Stages(Enum):
    FACTORY = "factory"
    EXPORT = "export"
    POST_EXPORT = "post_export"
    PATTERN_MATCHER = "pattern_matcher"
    SHARDING = "sharding"
    WEIGHT_LOAD = "weight_load"
    POST_LOAD_FUSION = "post_load_fusion"
    CACHE_INIT = "cache_init"
    VISUALIZE = "visualize"
    EXPORT_ONNX = "export_onnx"
    COMPILE = "compile"

    def __lt__(self, other):
        order = list(Stages)
        return order.index(self) < order.index(other)


class SharedConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    local_rank: int = 0
    world_size: int = 1


class TransformConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    stage: Stages = Field(description="The stage of the transformation pipeline.")
    run_per_gm: bool = True
    enabled: bool = True
    skip_on_error: bool = False
    run_graph_cleanup: bool = True
    run_shape_prop: bool = False
    requires_clean_graph: bool = True
    requires_shape_prop: bool = False
    debug_visualize_dir: Optional[str] = None
    expect_mem_change: bool = False


class TransformInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    skipped: bool = True
    num_matches: int = 0
    is_clean: bool = False
    has_valid_shapes: bool = False


class BaseTransform:
    config: TransformConfig
    _transform_key: str = ""

    @classmethod
    def get_transform_key(cls) -> str:
        return cls._transform_key

    @classmethod
    def get_config_class(cls) -> Type[TransformConfig]:
        return TransformConfig

    def __init__(self, config: TransformConfig):
        self.config = self.get_config_class()(**config.model_dump())

    @classmethod
    def from_kwargs(cls, **kwargs) -> "BaseTransform":
        return cls(cls.get_config_class()(**kwargs))

    def __call__(self, gm, cm, factory, shared_config):
        if not self.config.enabled:
            return gm, TransformInfo(skipped=True)
        return self._apply(gm, cm, factory, shared_config)

    def _apply(self, gm, cm, factory, shared_config):
        raise NotImplementedError


class TransformRegistry:
    _registry: Dict[str, Type[BaseTransform]] = {}

    @classmethod
    def register(cls, name: str):
        def inner(fn):
            cls._registry[name] = fn
            fn._transform_key = name
            return fn

        return inner

    @classmethod
    def get(cls, name: str) -> Type[BaseTransform]:
        return cls._registry[name]

    @classmethod
    def get_config_class(cls, name: str) -> Type[TransformConfig]:
        return cls._registry[name].get_config_class()

    @classmethod
    def has(cls, name: str) -> bool:
        return name in cls._registry
