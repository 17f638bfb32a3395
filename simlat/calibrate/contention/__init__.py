"""Contention between model instances on one device: ``simlat calibrate --contention SPEC``.

k instances run back-to-back at once (k = 1..4 of one model, or mixed pairs), as separate
processes (time slicing), under CUDA MPS, or as CUDA streams of one process; the per-batch times
together are compared with the same member's times alone, and the slowdown is written as a
contention profile (``"schema": "simlat.contention"``, see docs/calibration.md).

One module per concept: :mod:`.spec` (what to measure), :mod:`.overlap` (which batches ran
together, statistics and slowdowns: pure numpy), :mod:`.worker` (a measuring process that stays
up and takes commands), :mod:`.mps` (the MPS control daemon), :mod:`.gpu` (the SM clock, for the provenance), :mod:`.campaign` (running the
sets), :mod:`.profile` (the file: build, check, save, load, describe), :mod:`.command` (the entry
point, also ``python -m simlat.calibrate.contention``).

Nothing here imports pydantic, simpy or pandas: it runs on GPU hosts that have only torch and numpy.
"""
