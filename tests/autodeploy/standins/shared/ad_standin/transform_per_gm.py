"""``BaseTransform`` as the resource-handler and ``BatchInfo`` generations of ``AD/transform/interface.py``
have it (the 30.7k-char revision read for /work/shared/research/autodeploy_api_notes.md §3.1; the same entry
point in the ``BatchInfo`` revision): ``__call__(mod, cm, factory, shared_config, idx) -> mod`` (``idx``: the
transform's position in the optimizer's pipeline); with ``run_per_gm`` (default) ``_apply`` runs on every
GraphModule in ``mod`` (``mod`` itself when it is one), else ``_apply_to_full_model(mod, ...)``; the info
lands in ``mod.meta["_autodeploy"]["transform_history"]`` and ``mod`` is returned.
"""
from torch.fx import GraphModule

from ad_standin.transform_core import BaseTransformCore


class BaseTransform(BaseTransformCore):
    def __call__(self, mod, cm, factory, shared_config, idx: int):
        if not self.config.run_per_gm:
            mod, _ = self._run_full(mod, cm, factory, shared_config)
            return mod
        graphs = [m for _, m in mod.named_modules() if isinstance(m, GraphModule)]
        for gm in graphs:
            self._run(gm, cm, factory, shared_config)
        if not isinstance(mod, GraphModule) and graphs:
            if not hasattr(mod, "meta"):
                mod.meta = {}
            mod.meta.update(graphs[0].meta)
        return mod

    def _run_full(self, mod, cm, factory, shared_config):
        apply = self._apply

        def full_model(m, c, f, s):
            return self._apply_to_full_model(m, c, f, s)

        self._apply = full_model
        try:
            return self._run(mod, cm, factory, shared_config)
        finally:
            self._apply = apply

    def _apply_to_full_model(self, mod, cm, factory, shared_config):
        raise NotImplementedError
