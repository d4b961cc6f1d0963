"""STAND-IN of ``AD/transform/library/``: the keys upstream registers
(``ad_standin.upstream_names.UPSTREAM_TRANSFORMS``), so tests can check our keys never replace them."""
from ad_standin.upstream_names import UPSTREAM_TRANSFORMS, register_upstream_transforms  # noqa: F401  (re-exported)

from .interface import BaseTransform, TransformRegistry

register_upstream_transforms(BaseTransform, TransformRegistry)
