"""The scan pipeline: Dask blocks -> jitted sharded JAX on each worker -> Zarr by region."""

from jscan.pipeline.run import simulate_scan
from jscan.pipeline.store import open_scan

__all__ = ["open_scan", "simulate_scan"]
