"""``AD/transform/interface.py`` pieces shared by both generations' stand-ins.

Mirrors NVIDIA/TensorRT-LLM ``tensorrt_llm/_torch/auto_deploy/transform/interface.py`` at commit
01f08360 (stored version 52280247402, 15,551 chars):

* ``Stages``: an ordered enum (factory < export < post_export < pattern_matcher < sharding < weight_load
  < post_load_fusion < cache_init < visualize < compile; the 30.7k-char revision adds export_onnx);
* ``TransformConfig``: pydantic, extra keys allowed, ``stage`` required, ``enabled``/``skip_on_error``/
  cleanup flags; ``TransformInfo``: frozen, ``skipped`` and ``num_matches`` REQUIRED;
* ``BaseTransform``: ``__init__(config)`` re-validates into ``get_config_class()``; running it: when
  disabled, the info of the last transform with ``skipped=True, num_matches=0``; else ``_apply(gm, cm,
  factory, shared_config) -> (gm, info)`` (``skip_on_error`` turns an exception into a skipped info); the
  info is stored in ``gm.meta["_autodeploy"]["transform_history"][<key>]`` and the graph is returned —
  never ``(gm, info)``;
* ``TransformRegistry``: ``register`` stores the class and sets ``_transform_key`` (silently replacing),
  ``get`` raises ``KeyError`` for an unregistered key, ``get_config_class``, ``has``.
Graph cleanup (canonicalize / shape propagation) is not mirrored: the adapter's passes do not rely on it.
"""
from __future__ import annotations

from enum import Enum
from functools import total_ordering
from typing import Dict, Optional, Type

from pydantic import BaseModel, ConfigDict, Field

AUTODEPLOY_META_KEY = "_autodeploy"
HISTORY_KEY = "transform_history"


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
    skipped: bool
    num_matches: int
    is_clean: bool = False
    has_valid_shapes: bool = False


def transform_history(mod) -> Dict[str, TransformInfo]:
    """The infos stored by every transform run on ``mod`` so far, in run order."""
    return getattr(mod, "meta", {}).get(AUTODEPLOY_META_KEY, {}).get(HISTORY_KEY, {})


class BaseTransformCore:
    """Everything of upstream's ``BaseTransform`` but ``__call__`` (whose signature differs by generation)."""

    config: TransformConfig
    _transform_key: str

    @classmethod
    def get_transform_key(cls) -> str:
        if hasattr(cls, "_transform_key"):
            return cls._transform_key
        raise NotImplementedError(f"Transform class {cls.__name__} must be registered with TransformRegistry.register()")

    @classmethod
    def get_config_class(cls) -> Type[TransformConfig]:
        return TransformConfig

    def __init__(self, config: TransformConfig):
        if not isinstance(config, self.get_config_class()):
            config = self.get_config_class()(**config.model_dump())
        self.config = config

    @classmethod
    def from_kwargs(cls, **kwargs) -> "BaseTransformCore":
        return cls(config=cls.get_config_class()(**kwargs))

    def _run(self, gm, cm, factory, shared_config):
        """Run (or skip) ``_apply`` on one graph, store its info in the graph's meta; returns ``(gm, info)``."""
        history = dict(transform_history(gm))
        info_last = list(history.values())[-1] if history else TransformInfo(skipped=False, num_matches=0)
        if self.config.enabled:
            if self.config.skip_on_error:
                try:
                    gm, info = self._apply(gm, cm, factory, shared_config)
                except Exception:  # noqa: BLE001  (mirrors upstream's skip_on_error)
                    info = TransformInfo(skipped=True, num_matches=0)
            else:
                gm, info = self._apply(gm, cm, factory, shared_config)
        else:
            info = TransformInfo(**{**info_last.model_dump(), "skipped": True, "num_matches": 0})
        history[self.get_transform_key()] = info
        if not hasattr(gm, "meta"):
            gm.meta = {}
        gm.meta.setdefault(AUTODEPLOY_META_KEY, {})[HISTORY_KEY] = history
        return gm, info

    def _apply(self, gm, cm, factory, shared_config):
        raise NotImplementedError

    def _add_or_retrieve_input(self, gm, cm, name: str):
        """The graph input ``name`` (a new placeholder after the last one, its SequenceInfo field
        activated with ``cm.info.activate_arg``), or the existing one."""
        existing = [n for n in gm.graph.nodes if n.op == "placeholder" and n.name == name]
        if existing:
            return existing[0]
        cm.info.activate_arg(name)
        last = [n for n in gm.graph.nodes if n.op == "placeholder"][-1]
        with gm.graph.inserting_after(last):
            return gm.graph.placeholder(name)


class TransformRegistry:
    _registry: Dict[str, Type[BaseTransformCore]] = {}

    @classmethod
    def register(cls, name: str):
        def inner(fn):
            cls._registry[name] = fn
            fn._transform_key = name
            return fn

        return inner

    @classmethod
    def get(cls, name: str):
        return cls._registry[name]

    @classmethod
    def get_config_class(cls, name: str):
        return cls.get(name).get_config_class()

    @classmethod
    def has(cls, name: str) -> bool:
        return name in cls._registry
