"""Triton Python-backend model serving one of simlat's built-in models (copied into a model repository).

Parameters (``config.pbtxt``): ``simlat_root`` (where the ``simlat`` package is), ``model``,
``variant`` (a calibration variant: fp32, bf16, compile_cudagraphs, ...), ``device`` and
``max_batch``. Outputs leave through DLPack: the Python-backend stub shipped with some Triton
builds misreads numpy 2 arrays handed to ``pb_utils.Tensor``.
"""

import json
import sys

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        p = {k: v["string_value"] for k, v in cfg.get("parameters", {}).items()}
        sys.path.insert(0, p["simlat_root"])
        import torch

        from simlat.calibrate.models import LoadedModel, resolve_model
        from simlat.calibrate.variants import VARIANTS

        self.torch = torch
        self.device = p.get("device", "cpu")
        self.input_name = cfg["input"][0]["name"]
        self.output_name = cfg["output"][0]["name"]
        torch.set_num_threads(int(p.get("threads", "1")))
        model = LoadedModel(resolve_model(p["model"], seq_len=int(p.get("seq_len", "64"))))
        gen = torch.Generator().manual_seed(0)
        example = model.make_inputs(1, gen)
        self.prepared = VARIANTS[p.get("variant", "fp32")].prepare(model, self.device, example)
        max_batch = int(p.get("max_batch", "1"))
        for _ in range(3):  # warm every batch size (compile variants record one graph per size)
            for b in range(1, max_batch + 1):
                self._run(model.make_inputs(b, gen)[0].numpy())

    def _run(self, x):
        torch = self.torch
        out = self.prepared.call(self.prepared.convert((torch.from_numpy(x),)))
        y = out.float().reshape(len(x), -1)[:, :1]
        return y.cpu().contiguous()

    def execute(self, requests):
        xs = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        sizes = [len(x) for x in xs]
        y = self._run(np.concatenate(xs))
        responses = []
        i = 0
        for k in sizes:
            part = y[i:i + k].contiguous()
            i += k
            t = pb_utils.Tensor.from_dlpack(self.output_name, self.torch.utils.dlpack.to_dlpack(part))
            responses.append(pb_utils.InferenceResponse(output_tensors=[t]))
        return responses
