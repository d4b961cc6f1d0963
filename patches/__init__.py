"""Export patches (installed as ``trtllm_flash.patches``): while exporting, each token mixer and norm of the
reference model runs a forward that calls ONE ``torch.ops.trtllm_flash`` source op, so the exported graph
holds one node per mixer op. See :func:`apply_export_patches`."""
from trtllm_flash.patches.registry import PATCHES, ExportPatch, apply_export_patches, patch_for

__all__ = ["PATCHES", "ExportPatch", "apply_export_patches", "patch_for"]
