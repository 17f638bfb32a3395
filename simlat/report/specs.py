"""The metric spec table: one :class:`MetricSpec` per quantity a chart can show.

Chart builders never spell a title, a unit or a scale themselves; they look the field up here, so
every axis, legend and tooltip of the report names the same quantity the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import altair as alt

Scale = Literal["linear", "log", "sqrt"]


@dataclass(frozen=True)
class MetricSpec:
    """How one column is shown: ``field`` in the chart data, human ``title``, ``unit`` and axis ``scale``.

    ``fmt`` is the d3 number format used in tooltips and axis labels.
    """

    field: str
    title: str
    unit: str = ""
    scale: Scale = "linear"
    fmt: str = ",.3~f"

    @property
    def axis_title(self) -> str:
        """``"p99 latency (ms)"``; the bare title when there is no unit."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    def alt_scale(self, **kw) -> alt.Scale:
        """The Altair scale for this metric (extra keyword arguments pass through).

        A log axis is fitted to the data (``nice=False`` plus padding): a "nice" log domain can
        waste a whole decade of the plot.
        """
        if self.scale == "log":
            kw = {"nice": False, "padding": 12, **kw}
        return alt.Scale(type=self.scale, **kw)

    def tooltip(self, type_: Literal["quantitative", "ordinal", "temporal", "nominal"] = "quantitative") -> alt.Tooltip:
        """A tooltip entry with the axis title and number format."""
        if type_ == "quantitative":
            return alt.Tooltip(self.field, type=type_, title=self.axis_title, format=self.fmt)
        return alt.Tooltip(self.field, type=type_, title=self.axis_title)


_SPECS = [
    MetricSpec("label", "Configuration"),
    MetricSpec("cost_per_hour", "Cost", "$/hour", "linear", ",.2f"),
    MetricSpec("replicas", "Replicas", "", "linear", ",d"),
    MetricSpec("replicas_needed", "Replicas needed", "", "linear", ",d"),
    MetricSpec("max_rate_rps", "Max rate meeting the SLO", "req/s", "linear", ",.0f"),
    MetricSpec("rate_rps", "Offered load", "req/s", "linear", ",.0f"),
    MetricSpec("p50_ms", "p50 latency", "ms", "log", ",.2f"),
    MetricSpec("p99_ms", "p99 latency", "ms", "log", ",.2f"),
    MetricSpec("p99_lo_ms", "p99 CI low", "ms", "log", ",.2f"),
    MetricSpec("p99_hi_ms", "p99 CI high", "ms", "log", ",.2f"),
    MetricSpec("p999_ms", "p99.9 latency", "ms", "log", ",.2f"),
    MetricSpec("slo_estimate_ms", "SLO percentile latency", "ms", "log", ",.2f"),
    MetricSpec("slo_lo_ms", "CI low", "ms", "log", ",.2f"),
    MetricSpec("slo_hi_ms", "CI high", "ms", "log", ",.2f"),
    MetricSpec("slo_met_probability", "P(SLO met)", "", "linear", ".3f"),
    MetricSpec("headroom", "Headroom", "", "linear", "+.0%"),
    MetricSpec("utilization", "Utilisation", "", "linear", ".0%"),
    MetricSpec("mean_batch_size", "Mean batch size", "requests", "linear", ",.1f"),
    MetricSpec("latency_ms", "Latency", "ms", "linear", ",.2f"),
    MetricSpec("quantile", "Fraction of requests at or below", "", "linear", ".4~f"),
    MetricSpec("component_ms", "Mean time", "ms", "linear", ",.3f"),
    MetricSpec("component", "Component"),
    MetricSpec("batch_size", "Batch size", "requests", "linear", ",d"),
    MetricSpec("batches", "Batches", "", "linear", ",d"),
    MetricSpec("share", "Share of batches", "", "linear", ".1%"),
    MetricSpec("items", "Batch size", "items", "log", ",d"),
    MetricSpec("median_ms", "Median batch latency", "ms", "log", ",.3f"),
    MetricSpec("p99_batch_ms", "p99 batch latency", "ms", "log", ",.3f"),
    MetricSpec("p01_ms", "p1 batch latency", "ms", "log", ",.3f"),
    MetricSpec("mean_ms", "Mean latency", "ms", "log", ",.3f"),
    MetricSpec("n", "Samples", "", "linear", ",d"),
    MetricSpec("variant", "Variant"),
    MetricSpec("variant_name", "Variant"),
    MetricSpec("max_batch_size", "Max batch size", "requests", "linear", ",d"),
    MetricSpec("max_wait_ms", "Max wait", "ms", "linear", ",.3~f"),
    MetricSpec("capacity", "Cache capacity", "entries", "log", ",d"),
    MetricSpec("hit_ratio", "Cache hit ratio", "", "linear", ".1%"),
]

METRICS: dict[str, MetricSpec] = {}
for _spec in _SPECS:
    if _spec.field in METRICS:  # never let a duplicate silently replace an entry
        raise RuntimeError(f"duplicate MetricSpec field {_spec.field!r}")
    METRICS[_spec.field] = _spec


def spec(field: str) -> MetricSpec:
    """The spec of ``field`` (KeyError names the field when the table lacks it)."""
    try:
        return METRICS[field]
    except KeyError:
        raise KeyError(f"no MetricSpec for field {field!r}") from None


def percentile_name(pct: float) -> str:
    """``99.0 -> "p99"``, ``99.9 -> "p99.9"``."""
    return f"p{pct:g}"
