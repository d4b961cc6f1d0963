"""Checkpoints shipped inside the package, by name (package data: one directory each, in the published layout).

``nemotron-flash-demo``: the small Nemotron-Flash that ``examples/train_demo.py`` trained on the prose of the
Python 3.11 documentation (Debian's ``python3.11-doc``, PSF License Agreement); its ``training.json`` records the
data slice, the settings and the held-out perplexities. A shipped name resolves to its directory and then loads
through :func:`trtllm_flash.loading.load_checkpoint` like any checkpoint directory.
"""
from __future__ import annotations

import os
from typing import List, Optional

#: names of the shipped checkpoints (each a directory beside this file)
SHIPPED = ("nemotron-flash-demo",)
#: the model the examples and the README's main job use by default
DEFAULT_MODEL = "nemotron-flash-demo"


def shipped_names() -> List[str]:
    return list(SHIPPED)


def shipped_checkpoint_dir(name: str) -> Optional[str]:
    """The directory of shipped checkpoint ``name``, or None when ``name`` is not one."""
    if name not in SHIPPED:
        return None
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
