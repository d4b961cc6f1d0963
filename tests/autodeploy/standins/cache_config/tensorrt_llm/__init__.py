"""STAND-IN, NOT TensorRT-LLM: the AutoDeploy API surface trtllm-flash's adapter touches, as the
``CacheConfig`` generation (the one docs/AUTODEPLOY.md finds in TensorRT-LLM 1.2.x: closure cache
initialisers, abstract ``is_paged``, buffers, 3-int ``batch_info``) has it. Put on ``sys.path`` only by
``tests/autodeploy/conftest.py``. Each module names the upstream file and revision it mirrors."""
__version__ = "1.2.1+trtllm-flash-stand-in-cache-config"
