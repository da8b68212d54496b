"""The scan pipeline: Dask blocks -> jitted sharded JAX on each worker -> Zarr by region.

`simulate_scan`, `open_scan` and `simulate_lazy` are imported on first use (PEP 562): a
worker process that imports `jscan.pipeline.run.worker` must not pull in the client side (the
run loop, the live page and its web server).
"""

_PIPELINE = {
    "simulate_scan": "jscan.pipeline.run.simulate",
    "open_scan": "jscan.pipeline.store",
    "simulate_lazy": "jscan.pipeline.run.lazy",
}


def __getattr__(name):
    if name in _PIPELINE:
        import importlib

        return getattr(importlib.import_module(_PIPELINE[name]), name)
    raise AttributeError(f"module 'jscan.pipeline' has no attribute {name!r}")


__all__ = ["open_scan", "simulate_lazy", "simulate_scan"]
