"""What the start-up hook leaves in AutoDeploy when registration failed: a factory under our name that
raises the failure's cause.

Without it a YAML with ``model_factory: TrtllmFlashNemotronFlashForCausalLM`` would fail in ``LlmArgs``
validation with upstream's "... does not exist in the model factory registry", which hides the reason
(e.g. an unsupported AutoDeploy generation). With it, validation passes and building the factory raises
the real cause, in the process that builds it.
"""
from __future__ import annotations

#: our factory's ``model_factory:`` name (upstream's "NemotronFlashForCausalLM" is not shadowed)
FACTORY_NAME = "TrtllmFlashNemotronFlashForCausalLM"


def register_refusal(error: Exception) -> bool:
    """Register the refusing factory under :data:`FACTORY_NAME` unless the name is taken; True if done."""
    from tensorrt_llm._torch.auto_deploy.models.factory import ModelFactoryRegistry

    if ModelFactoryRegistry.has(FACTORY_NAME):
        return False
    error_type = type(error) if isinstance(error, RuntimeError) else RuntimeError
    message = str(error) if isinstance(error, RuntimeError) else f"trtllm-flash could not register with AutoDeploy: {type(error).__name__}: {error}"

    class TrtllmFlashUnavailable:
        """Stands for trtllm-flash's factory when registration failed; building it raises why."""

        def __init__(self, *args, **kwargs):
            raise error_type(message)

    ModelFactoryRegistry.register(FACTORY_NAME)(TrtllmFlashUnavailable)
    return True
