"""Engine-level runs (defined in traces/run.py; re-exported for the engines)."""

from traces.run import ARun, AStep

__all__ = ["ARun", "AStep"]
