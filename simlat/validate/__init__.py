"""Prediction vs reality: run a real server under open-loop load and compare with the simulator.

- :mod:`simlat.validate.model_host`: the model the server serves (warmed, profiled in-process);
- :mod:`simlat.validate.server`: the aiohttp server with its asyncio dynamic batcher;
- :mod:`simlat.validate.loadgen`: the open-loop load generator (its own processes);
- :mod:`simlat.validate.measure`: capacity search under open-loop load and measured levels;
- :mod:`simlat.validate.fit`: service model and ``frontend`` block from the capacity probes;
- :mod:`simlat.validate.compare`: measured vs predicted percentiles per load level;
- :mod:`simlat.validate.runner`: ``validate(experiment, ...)``, what ``simlat validate`` calls.

The server-side modules need torch, numpy, aiohttp and msgpack only (no pydantic, no SimPy).
"""
