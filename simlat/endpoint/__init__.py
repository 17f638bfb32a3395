"""Any inference endpoint, measured from outside: open-loop probes, a serving profile, validation.

The measuring half needs numpy and aiohttp only (it runs on a GPU host that lacks the simulator's
dependencies); the fitting half uses the simulator.

- :mod:`.protocol`: what a request looks like on the wire (KServe v2 / Triton JSON, plain JSON);
- :mod:`.loadgen`: one open-loop load-generator process;
- :mod:`.probe`: one probe at a fixed Poisson rate from several generator processes, with the
  server's Prometheus counters before and after;
- :mod:`.campaign`: the calibration campaign (low-rate latency, open-loop capacity search, the
  latency-vs-rate curve, repeats for the run-to-run spread) and the validation levels;
- :mod:`.servers`: starting and stopping an external server (NVIDIA Triton with a generated model
  repository, simlat's own server, or any command);
- :mod:`.fit`: the serving profile fitted from the probes; :mod:`.profile` its schema;
- :mod:`.validation`: measured vs predicted per level, with prediction intervals and coverage.
"""
