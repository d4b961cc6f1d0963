"""STAND-IN, NOT TensorRT-LLM: the AutoDeploy API surface trtllm-flash's adapter touches, as the ``BatchInfo``
generation (TensorRT-LLM main, late 2026: a 12-int ``batch_info_host`` read through ``BatchInfo``, public
``SequenceInfo.get_arg``, ``nest_sequences(input_ids, cu_seqlen, input_pos, ...)``) has it. Put on
``sys.path`` only by ``tests/autodeploy/conftest.py``. Each module names the upstream file and revision it
mirrors."""
__version__ = "1.3.0rc99+trtllm-flash-stand-in-batch-info"
