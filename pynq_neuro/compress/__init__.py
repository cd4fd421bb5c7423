"""Compression of trained checkpoints (needs torch): pruning and low-rank factorization passes
with short quantization-aware fine-tunes (:mod:`.factorize`) and the ``compress`` subcommand
(:mod:`.cli`). Kept apart from :mod:`pynq_neuro.compiler`, which runs on the board with numpy
alone."""
