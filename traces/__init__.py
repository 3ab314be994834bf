"""Counterexamples and scenarios.

The Trace type, its strace-style text format, exporters, replay.
"""
