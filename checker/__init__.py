"""Engines that know nothing of memfd: explicit search, z3 encodings, verdicts, the command line."""
