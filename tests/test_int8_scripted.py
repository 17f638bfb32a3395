"""calibrate's int8_dynamic refuses what it cannot quantize (skipped with the reason), instead of
reporting the fp32 model as int8."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from simlat.calibrate.variants import Unsupported, prep_int8_dynamic  # noqa: E402


class _Model:
    def __init__(self, module):
        self.module = module


def test_a_torchscript_module_is_refused():
    scripted = torch.jit.trace(torch.nn.Sequential(torch.nn.Linear(4, 2)).eval(), torch.randn(1, 4))
    with pytest.raises(Unsupported, match="TorchScript module hides its layers"):
        prep_int8_dynamic(_Model(scripted), "cpu", (torch.randn(2, 4),))


def test_a_model_without_linear_layers_is_refused():
    with pytest.raises(Unsupported, match="no torch.nn.Linear"):
        prep_int8_dynamic(_Model(torch.nn.Sequential(torch.nn.ReLU()).eval()), "cpu", (torch.randn(2, 4),))
