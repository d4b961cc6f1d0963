"""STAND-IN, NOT TensorRT-LLM: the AutoDeploy API surface trtllm-flash's adapter touches, as the
resource-handler generation (main, about February 2026: resource handlers, ``max_seq_info``, 3-int
``batch_info``) has it, so the adapter's contract tests run where TensorRT-LLM cannot be installed. Put on
``sys.path`` only by ``tests/autodeploy/conftest.py``. Each module names the upstream file and revision it
mirrors."""
__version__ = "1.3.0rc0+trtllm-flash-stand-in-resource-handlers"
