"""Package list for setuptools: the ``trtllm_flash`` tree plus ``patches/`` installed as ``trtllm_flash.patches``."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["trtllm_flash", "trtllm_flash.*"]) + ["trtllm_flash.patches"],
    package_dir={"trtllm_flash.patches": "patches"},
)
