"""STAND-IN of ``tensorrt_llm/_torch/auto_deploy/__init__.py``: importing the package imports its
registries and registers upstream's own names (``from . import custom_ops, models, transform``), as the
real ``__init__`` does through its ``custom_ops`` / ``models`` / ``transform.library`` auto-imports."""
from . import custom_ops, models, shim, transform  # noqa: F401
