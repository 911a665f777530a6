"""Puts the shipped models and assets into the wheel, under hwml/shipped/ (the rest is in pyproject.toml).

The repository keeps `checkpoints/` and `assets/` at its top level (SPEC.md), where the Space and a
clone use them; an installed wheel has no top level, so the build copies the files the package reads
at run time beside its code, and `hwml.settings` looks there first. The makers' scripts
(checkpoints/card.py, make.sh, assets/make_*.py) stay out.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# folder -> the files of it the package reads (glob patterns)
SHIPPED = {
    "checkpoints": ["phoneme/*", "speaker/*"],
    "assets": ["README.md", "favicon.png", "logo.svg", "style.css", "clips/*", "fonts/*.ttf"],
}


class BuildWithShippedFiles(build_py):
    """build_py, then copy SHIPPED into <build>/hwml/shipped/ (an editable install reads the clone's)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "hwml" / "shipped"
        for folder, patterns in SHIPPED.items():
            for pattern in patterns:
                for src in sorted((HERE / folder).glob(pattern)):
                    if src.is_file():
                        dst = target / folder / src.relative_to(HERE / folder)
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(src, dst)


setup(cmdclass={"build_py": BuildWithShippedFiles})
