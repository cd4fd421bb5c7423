"""pynq-neuro: quantized time-delay neural networks for MNIST, from PyTorch to the PYNQ-Z2."""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py as _build_py

HERE = Path(__file__).parent
version = {}
exec((HERE / "pynq_neuro" / "__init__.py").read_text(), version)

# PYNQ discovers the overlay and the notebooks through entry points (pynq.overlays,
# pynq.notebooks): `pynq get-notebooks pynq-neuro` copies the notebooks, and
# `pynq.Overlay("neuro.bit")` finds pynq_neuro/overlays/neuro/neuro.bit and binds NeuroCoreIP
# (pynq.lib). The notebooks stay in
# the top-level notebooks/ folder; pynq_neuro/notebooks is a symbolic link to it, so that the
# notebooks are the package data of pynq_neuro.notebooks in a wheel and in an editable install.
NOTEBOOKS_PACKAGE = "pynq_neuro.notebooks"
NOTEBOOKS = [NOTEBOOKS_PACKAGE] if (HERE / "pynq_neuro" / "notebooks").is_dir() else []
OVERLAY_DIR = HERE / "pynq_neuro" / "overlays" / "neuro"


class build_py(_build_py):
    """Notebooks without their jupytext sources (notebooks/*.py); overlay files named by `.link`
    descriptors are downloaded when pynq provides the `download_overlays` command."""

    def find_package_modules(self, package, package_dir):
        if package == NOTEBOOKS_PACKAGE:
            return []
        return super().find_package_modules(package, package_dir)

    def run(self):
        super().run()
        if not list(OVERLAY_DIR.glob("*.link")):
            return
        try:
            self.distribution.get_command_class("download_overlays")
        except Exception:  # noqa: BLE001 - distutils raises its own error for unknown commands
            print("warning: pynq is not installed here, the overlay .link files are shipped "
                  "unresolved (see overlays/README.md)")
            return
        self.run_command("download_overlays")

setup(
    name="pynq-neuro",
    version=version["__version__"],
    description="Quantized time-delay neural networks for MNIST, from PyTorch to the PYNQ-Z2",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.10",
    packages=find_packages(include=["pynq_neuro", "pynq_neuro.*"]) + NOTEBOOKS,
    package_data={
        "pynq_neuro": ["data/mnist/*.gz", "zoo/*.pt", "zoo/*.npz", "zoo/*.json"],
        "pynq_neuro.overlays": ["neuro/README.md", "neuro/*.bit", "neuro/*.hwh", "neuro/*.link",
                                "neuro/*.rpt", "neuro/*.txt", "neuro/artifact/*.*",
                                "neuro/artifact/mem/*.mem"],
        NOTEBOOKS_PACKAGE: ["*.ipynb", "*.md", "*.png", "*.jpg", "*.json"],
    },
    # Ranges here; the exact versions the project is tested with are in constraints.txt
    # (scripts/setup.sh installs with `-c constraints.txt`).
    install_requires=["numpy>=1.21,<2"],
    extras_require={
        "train": ["torch>=2.1,<3", "matplotlib>=3.5", "tqdm>=4.60"],
        "plot": ["matplotlib>=3.5"],
        # reading PNG/JPEG pictures for `pynq-neuro classify` (arrays need numpy only)
        "images": ["Pillow>=9"],
        # the drawing pad of notebook 4 (without them it falls back to a toggle grid or to
        # the fixed drawings); tried with ipywidgets 8.1 and ipycanvas 0.14
        "pad": ["ipywidgets>=7.6", "ipycanvas>=0.13"],
        # cocotbext-axi is pinned: sim/cosim_server.py calls the private
        # AxiStreamSource/AxiStreamSink._handle_reset() to abort a stream in flight.
        "sim": ["cocotb~=2.1", "cocotbext-axi==0.1.28", "find_libpython>=0.3"],
        # On the PYNQ-Z2 (image v3.0.1: pynq 3.0.1, Python 3.10): keeps the image's pynq.
        "board": ["pynq>=3.0.1,<5"],
        # `pynq-neuro explore`: Ray Tune runs the trials, Optuna samples them (NSGA-II, TPE).
        # pyarrow (Ray Tune's storage layer) from 26 on needs NumPy 2, which pynq-neuro does
        # not use yet. PyYAML reads YAML search spaces.
        "explore": ["ray[tune]>=2.40,<3", "optuna>=4.0,<6", "pyarrow>=14,<26", "PyYAML>=5.1"],
        # pynq's own driver classes off the board (tests of the board backend on a host).
        "pynq-host": ["pynq>=4,<5"],
        # the UCI digits of benchmarks/datasets.py (the package never imports it)
        "bench": ["scikit-learn>=1.3"],
        # the Brevitas peer in benchmarks/peers.py (the package never imports it)
        "peers": ["brevitas>=0.13,<0.14"],
        "dev": ["pytest>=7", "hypothesis>=6", "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6",
                "pyslang~=12.1", "jupytext>=1.14", "vermin>=1.6"],
    },
    entry_points={
        "console_scripts": ["pynq-neuro = pynq_neuro.cli:main"],
        "pynq.overlays": ["pynq-neuro = pynq_neuro.overlays"],
        # pynq imports the IP drivers of this group before it assigns drivers to an overlay
        "pynq.lib": ["pynq-neuro = pynq_neuro.driver.board"],
        "pynq.notebooks": [f"pynq-neuro = {p}" for p in NOTEBOOKS],
    },
    cmdclass={"build_py": build_py},
)
