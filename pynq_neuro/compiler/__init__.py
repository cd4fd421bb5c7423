"""Neuromorphic compiler: factorization passes (torch), time-delay mapping, hardware mapping and artifacts."""
