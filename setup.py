"""pynq-neuro: quantized time-delay neural networks for MNIST, from PyTorch to the PYNQ-Z2."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
version = {}
exec((HERE / "pynq_neuro" / "__init__.py").read_text(), version)

setup(
    name="pynq-neuro",
    version=version["__version__"],
    description="Quantized time-delay neural networks for MNIST, from PyTorch to the PYNQ-Z2",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.10",
    packages=find_packages(include=["pynq_neuro", "pynq_neuro.*"]),
    package_data={
        "pynq_neuro": ["data/mnist/*.gz", "zoo/*.pt", "zoo/*.npz", "zoo/*.json"],
    },
    install_requires=["numpy>=1.21,<2"],
    extras_require={
        "train": ["torch==2.13.0", "matplotlib>=3.5", "tqdm>=4.60"],
        "plot": ["matplotlib>=3.5"],
        "sim": ["cocotb==2.1.0", "cocotbext-axi==0.1.28"],
        "board": ["pynq==4.0.0"],
        "dev": ["pytest>=7", "hypothesis>=6", "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6"],
    },
    entry_points={"console_scripts": ["pynq-neuro = pynq_neuro.cli:main"]},
)
