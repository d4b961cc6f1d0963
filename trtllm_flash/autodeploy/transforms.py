"""Our graph passes (:mod:`trtllm_flash.transforms`) registered with AutoDeploy's ``TransformRegistry``.

Each pass of our registry is wrapped in a ``BaseTransform`` subclass registered as
``trtllm_flash_<name>`` (never an upstream key: upstream's ``fuse_gemms`` or ``fuse_mamba_a_log`` keep
their meaning), with a config class derived from ``TransformConfig`` that carries the same extra fields
as our pass's config class. A YAML enables one with, e.g.::

    transforms:
      trtllm_flash_fold_logit_row_norm: {stage: post_load_fusion}

Passes whose job AutoDeploy does itself are not wrapped (:data:`NOT_WRAPPED`). Mirrors ``BaseTransform``
(``get_config_class``, ``_apply(gm, cm, factory, shared_config) -> (gm, TransformInfo)``),
``TransformConfig``, ``TransformInfo(skipped, num_matches, is_clean, has_valid_shapes)``, ``Stages``
and ``TransformRegistry.register/has/get`` of ``AD/transform/interface.py`` (30.7k-char revision) and
the ``_apply`` shape of ``AD/transform/library/fuse_mamba_a_log.py`` (stored version 4186012271).
"""
from __future__ import annotations

from types import ModuleType
from typing import Dict, Type

from pydantic import create_model

from trtllm_flash.autodeploy.upstream import BaseTransform, TransformConfig, TransformInfo, TransformRegistry
from trtllm_flash.transforms import all_transforms
from trtllm_flash.transforms.insert_cached_op import INSERT_KEYS
from trtllm_flash.transforms.registry import BaseTransform as OurTransform
from trtllm_flash.transforms.registry import BuildContext, Stage

#: our passes AutoDeploy covers with its own transforms, and why
NOT_WRAPPED: Dict[str, str] = {
    "export_to_gm": "AutoDeploy exports the model itself (our export patches run inside the model class, see factory.py)",
    "compile_model": "AutoDeploy's compile_model drives its own CUDA-graph / torch.compile backends",
    "gather_logits_before_lm_head": "adds a gather_idx input AutoDeploy does not feed; use upstream's transform of the same name",
    **{key: "AutoDeploy's own insert_cached_* transform does this with backend: <our descriptor name>" for key in INSERT_KEYS},
}

#: prefix of every transform key we register with AutoDeploy
KEY_PREFIX = "trtllm_flash_"

#: fields AutoDeploy's TransformConfig already has (taken from it, not copied from ours)
_COMMON_FIELDS = ("stage", "enabled")


def autodeploy_key(name: str) -> str:
    return f"{KEY_PREFIX}{name}"


def make_autodeploy_transform(name: str, ours: Type[OurTransform], mapping: ModuleType) -> Type[BaseTransform]:
    """A ``BaseTransform`` running our pass ``ours`` on each GraphModule AutoDeploy hands it
    (``mapping``: the installed generation's mapping module, for the page size)."""
    our_config_class = ours.config_class
    extra_fields = {
        field: (info.annotation, info)
        for field, info in our_config_class.model_fields.items()
        if field not in _COMMON_FIELDS
    }
    config_class = create_model(f"{ours.__name__}AutoDeployConfig", __base__=TransformConfig, **extra_fields)

    class Transform(BaseTransform):
        our_pass = ours

        @classmethod
        def get_config_class(cls) -> Type[TransformConfig]:
            return config_class

        def _apply(self, gm, cm, factory, shared_config):
            values = {field: getattr(self.config, field) for field in extra_fields}
            our_config = our_config_class(stage=Stage(self.config.stage.value), enabled=self.config.enabled, **values)
            ctx = BuildContext(
                max_batch_size=cm.info.max_batch_size,
                max_seq_len=cm.info.max_seq_len,
                page_size=mapping.page_size(cm.info),
                device=cm.info.device,
            )
            gm, info = ours(our_config).apply(gm, ctx)
            return gm, TransformInfo(
                skipped=info.skipped, num_matches=info.num_matches, is_clean=info.skipped, has_valid_shapes=info.skipped
            )

    Transform.__name__ = Transform.__qualname__ = f"{ours.__name__}AutoDeploy"
    Transform.__doc__ = f"AutoDeploy face of our ``{name}`` pass (:class:`{ours.__module__}.{ours.__name__}`)."
    return Transform


def register_transforms(mapping: ModuleType) -> Dict[str, Type[BaseTransform]]:
    """Register every wrappable pass under ``trtllm_flash_<name>``; returns AutoDeploy key -> class.

    ``TransformRegistry.register`` silently replaces, so a key already held by a class that is not a
    wrapper of the same pass raises instead of being overwritten.
    """
    registered = {}
    for name, ours in sorted(all_transforms().items()):
        if name in NOT_WRAPPED:
            continue
        key = autodeploy_key(name)
        if TransformRegistry.has(key):
            existing = TransformRegistry.get(key)
            if getattr(existing, "our_pass", None) is not ours:
                raise RuntimeError(f"AutoDeploy transform {key!r} is already registered by {existing.__qualname__}")
            registered[key] = existing
            continue
        registered[key] = TransformRegistry.register(key)(make_autodeploy_transform(name, ours, mapping))
    return registered
