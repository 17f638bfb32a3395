"""The discrete-event engine: cache -> balancer -> batcher -> servers, per-request records out.

Requests are rows of numpy arrays, never SimPy processes; SimPy processes model the queues
(batcher and servers), and events happen per batch. See :mod:`simlat.engine.simulation`.
"""

from simlat.engine.records import Records, SimResult, write_records
from simlat.engine.simulation import simulate

__all__ = ["Records", "SimResult", "simulate", "write_records"]
