"""Imported by the sweep's fork server (it is in the pool's preload list): the fork server dies with
the sweep that started it. Importing it anywhere else does nothing (see :mod:`simlat.sweep.lifeline`)."""

from __future__ import annotations

import os

from simlat.sweep.lifeline import SWEEP_PID_ENV, die_with_parent

if os.environ.get(SWEEP_PID_ENV) == str(os.getppid()):
    die_with_parent()
