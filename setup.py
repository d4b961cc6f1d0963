"""setuptools glue that pyproject.toml cannot express:

* ``patches/`` is installed as the subpackage ``trtllm_flash.patches``;
* ``trtllm_flash_autodeploy.pth`` lands at the root of site-packages, so every Python process (also
  AutoDeploy's spawned executor workers) runs the tiny activation hook at start-up
  (docs/AUTODEPLOY.md).
"""
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

AUTODEPLOY_PTH = os.path.join("trtllm_flash", "autodeploy", "trtllm_flash_autodeploy.pth")


class BuildPyWithAutoDeployPth(build_py):
    """build_py that also copies the .pth file to the root of the build tree (= site-packages)."""

    def run(self):
        super().run()
        self.copy_file(AUTODEPLOY_PTH, os.path.join(self.build_lib, os.path.basename(AUTODEPLOY_PTH)), preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, os.path.basename(AUTODEPLOY_PTH))]


setup(
    packages=find_packages(include=["trtllm_flash", "trtllm_flash.*"]) + ["trtllm_flash.patches"],
    package_dir={"trtllm_flash.patches": "patches"},
    cmdclass={"build_py": BuildPyWithAutoDeployPth},
)
