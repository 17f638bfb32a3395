"""Calibration: measure service times of real models on the real device and write a profile.

One module per concept: :mod:`.models` (built-in and user models), :mod:`.variants` (precisions,
compilers, runtimes), :mod:`.timing` (warm-up until steady, timed calls), :mod:`.stats`
(quantile sketch, median CI), :mod:`.roofline` (device peaks, floors), :mod:`.overheads`
(serialization, host/device copies), :mod:`.environment` (provenance), :mod:`.worker` (one
isolated process per variant), :mod:`.budget` (how long to measure), :mod:`.plan` (what to
measure) and :mod:`.runner` (the command's logic: run workers, assemble the profile).

Nothing here is imported by ``simlat simulate``; torch is imported only inside worker processes.
"""
