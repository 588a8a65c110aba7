"""Firebreak SDK: what an agent imports to be stoppable from outside its own reasoning."""

__version__ = "0.1.0"
