"""STAND-IN of ``AD/transform/interface.py`` as the resource-handler generation has it. The shared behaviour (stages,
configs, infos, history in ``mod.meta["_autodeploy"]``, registry) is in ``ad_standin.transform_core``; the
entry point ``BaseTransform.__call__(mod, cm, factory, shared_config, idx) -> mod`` (with ``run_per_gm``),
the same in the resource-handler and ``BatchInfo`` generations, is ``ad_standin.transform_per_gm``.
"""
from ad_standin.transform_core import (  # noqa: F401  (re-exported as upstream's names)
    BaseTransformCore,
    SharedConfig,
    Stages,
    TransformConfig,
    TransformInfo,
    TransformRegistry,
    transform_history,
)
from ad_standin.transform_per_gm import BaseTransform  # noqa: F401
