"""Planner reports: a self-contained HTML page (Altair charts, Vega inlined) with the decision on top.

``write_report(result, experiment, out_dir)`` is the entry point; charts come from pure builders
in :mod:`simlat.report.charts` driven by the spec table in :mod:`simlat.report.specs`.
"""

from simlat.report.specs import METRICS, MetricSpec
from simlat.report.writer import write_report

__all__ = ["METRICS", "MetricSpec", "write_report"]
