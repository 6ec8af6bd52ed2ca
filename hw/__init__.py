"""Amaranth 0.5 components of mxforge: MXINT arithmetic units and their baselines."""

__version__ = "0.1.0"
