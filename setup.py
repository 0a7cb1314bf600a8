"""The wheel's packages: prunelab's code, found under src/, and its config tree, the top-level conf/,
as the package `prunelab.conf` (pyproject.toml holds the rest of the build's settings)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages("src"), "prunelab.conf"], package_dir={"": "src", "prunelab.conf": "conf"})
