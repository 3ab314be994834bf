"""Counterexamples and scenarios: the Trace type, its strace-style text format, exporters, replay."""
