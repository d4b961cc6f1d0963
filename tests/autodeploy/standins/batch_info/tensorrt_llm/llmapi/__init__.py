"""STAND-IN of ``tensorrt_llm/llmapi`` (see ``tensorrt_llm/__init__.py`` of this stand-in)."""
