"""`ScanJob`: what a scan's worker state is built from, in any process."""

from dataclasses import dataclass

from jscan.inputs.config import Config
from jscan.pipeline.run.plan import ScanPlan
from jscan.pipeline.run.spec import ScanSpec


@dataclass(frozen=True)
class ScanJob:
    """What a scan's worker state is built from: its `ScanSpec` (the config, its O(blocks)
    plan, the probe and the detector model) and where the run writes."""

    spec: ScanSpec
    store: str
    compilation_cache: str | None = None  # JAX's persistent compilation cache (private dir)
    store_id: str = ""  # the store's UUID (attribute store_id): checked before the first write
    generator: str | None = None  # "host", "device" or "none" (None: decided by each runner)

    @property
    def config(self) -> Config:
        return self.spec.config

    @property
    def plan(self) -> ScanPlan:
        """Makes each block's positions from its index."""
        return self.spec.plan
