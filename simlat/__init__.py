"""simlat: discrete-event capacity planning for ML inference serving.

Data flows one way: experiment YAML -> config (strict pydantic) -> workload arrays ->
engine (SimPy, requests as numpy rows) -> per-request records -> metrics -> sweep -> report.
"""

__version__ = "0.1.0"
