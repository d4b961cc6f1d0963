"""STAND-IN of ``AD/transform/interface.py`` as the ``CacheConfig`` generation has it: NVIDIA/TensorRT-LLM
commit 01f08360 (stored version 52280247402, 15,551 chars). Shared behaviour in
``ad_standin.transform_core``; this generation's entry point is
``BaseTransform.__call__(gm, cm, factory, shared_config) -> gm`` (no ``idx``, no ``run_per_gm`` /
``_apply_to_full_model``): ``_apply`` runs on the graph handed in, the info lands in
``gm.meta["_autodeploy"]["transform_history"]``."""
from ad_standin.transform_core import (  # noqa: F401  (re-exported as upstream's names)
    BaseTransformCore,
    SharedConfig,
    Stages,
    TransformConfig,
    TransformInfo,
    TransformRegistry,
    transform_history,
)


class BaseTransform(BaseTransformCore):
    def __call__(self, gm, cm, factory, shared_config):
        gm, _ = self._run(gm, cm, factory, shared_config)
        return gm
