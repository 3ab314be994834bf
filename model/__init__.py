"""The kernel as a transition system: the modelling language, uapi vocabulary and designs.

Knows nothing of engines (see ARCHITECTURE.md: model <- properties <- traces <- checker).
"""
