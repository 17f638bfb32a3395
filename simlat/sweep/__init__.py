"""Sweeps: grids over experiment fields, rate search under the SLO, and the operating-point choice."""
