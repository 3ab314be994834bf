"""Named properties: invariants, action (two-state) properties and `sometimes` properties."""
