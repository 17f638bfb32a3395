"""What one inference request looks like on the wire, per protocol.

- ``kserve_v2``: the KServe v2 / NVIDIA Triton HTTP protocol: ``POST {url}/v2/models/{model}/infer``
  with ``{"inputs": [{"name", "shape", "datatype", "data"}]}``; readiness at ``/v2/health/ready``.
- ``json``: a plain JSON ``POST`` to ``url`` exactly as given, with ``{"instances": [input]}``
  (the TensorFlow-Serving / KServe v1 shape) or a body read from a file; readiness is a successful
  request.

Needs numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

PROTOCOLS = ("kserve_v2", "json")
DTYPES = {"float32": ("FP32", np.float32), "int64": ("INT64", np.int64)}


@dataclass(frozen=True)
class Target:
    """An endpoint to load: its base URL, protocol, model name and input tensor."""

    url: str
    protocol: str = "kserve_v2"
    model: str = "model"
    input_name: str = "x"
    input_spec: str = "float32:512"  # dtype:size of one request's input
    metrics_url: str | None = None  # Prometheus text endpoint (Triton: http://host:8002/metrics)
    body_file: str | None = None  # a fixed JSON body for protocol json

    @property
    def infer_url(self) -> str:
        """Where requests go."""
        if self.protocol == "kserve_v2":
            return f"{self.url.rstrip('/')}/v2/models/{self.model}/infer"
        return self.url

    @property
    def ready_url(self) -> str | None:
        """A GET that answers 200 when the server is ready, or None (probe with a request)."""
        if self.protocol == "kserve_v2":
            return f"{self.url.rstrip('/')}/v2/health/ready"
        return None

    def bodies(self, n: int = 32, seed: int = 1) -> list[bytes]:
        """``n`` request bodies with random inputs (or the fixed body file)."""
        if self.body_file:
            with open(self.body_file, "rb") as f:
                return [f.read()]
        dtype, size = self.input_spec.split(":")
        if dtype not in DTYPES:
            raise ValueError(f"input: dtype {dtype!r} is not supported (valid: {', '.join(DTYPES)})")
        tname, npt = DTYPES[dtype]
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            if npt is np.int64:
                x = rng.integers(0, 8000, size=int(size)).tolist()
            else:
                x = np.round(rng.standard_normal(int(size)), 4).tolist()
            if self.protocol == "kserve_v2":
                msg = {"inputs": [{"name": self.input_name, "shape": [1, int(size)], "datatype": tname, "data": x}]}
            else:
                msg = {"instances": [x]}
            out.append(json.dumps(msg, separators=(",", ":")).encode())
        return out

    def to_json(self) -> dict:
        """Plain dict (for provenance and the generator processes)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
