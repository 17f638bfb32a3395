"""simlat: discrete-event capacity planning for ML inference serving.

Data flows one way: experiment YAML -> config (strict pydantic) -> workload arrays ->
engine (SimPy, requests as numpy rows) -> per-request records -> metrics -> sweep -> report.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load", "override", "run", "sweep"]


def __getattr__(name: str):
    """``simlat.load``, ``simlat.override``, ``simlat.run``: imported on first use (the package
    itself stays light). ``simlat.sweep`` is the subpackage, callable as the function."""
    if name in ("load", "override", "run", "RunResult"):
        from simlat import api

        return getattr(api, name)
    if name == "sweep":
        import importlib

        return importlib.import_module("simlat.sweep")
    raise AttributeError(f"module 'simlat' has no attribute {name!r}")
