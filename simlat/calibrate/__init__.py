"""Calibration: measure service times of real models on the real device and write a profile.

One module per concept: :mod:`.models` (built-in and user models), :mod:`.variants` (precisions,
compilers, runtimes), :mod:`.timing` (warm-up until steady, timed calls), :mod:`.stats`
(quantile sketch, median CI), :mod:`.roofline` (device peaks, floors), :mod:`.overheads`
(serialization, host/device copies), :mod:`.environment` (provenance), :mod:`.budget` (how long
to measure), :mod:`.plan` (what to measure, in which order), :mod:`.worker` (one isolated process
per task), :mod:`.runner` (running the workers within a time limit), :mod:`.assemble` (results to
a profile), :mod:`.command` (the ``simlat calibrate`` logic), :mod:`.merge` (a second run into a
profile), :mod:`.describe` (a profile as Markdown tables). :mod:`.redis` measures a Redis cache.

Nothing here is imported by ``simlat simulate``; torch is imported only inside worker processes.
"""
