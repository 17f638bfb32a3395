"""Strict pydantic models for the experiment file, and the loader that reads it.

One file per family; each pluggable family is a discriminated union on ``kind``.
"""

from simlat.config.base import StrictModel
from simlat.config.experiment import Experiment
from simlat.config.loader import load_experiment, parse_experiment

__all__ = ["Experiment", "StrictModel", "load_experiment", "parse_experiment"]
