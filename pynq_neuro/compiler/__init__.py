"""Neuromorphic compiler (numpy only, runs on the board): limits of the core, time-delay and
hardware mapping, folding search, cycle and resource models, artifacts. The compression passes
(torch) are in :mod:`pynq_neuro.compress`."""
