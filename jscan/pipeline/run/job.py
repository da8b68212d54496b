"""`ScanJob`: what a scan's worker state is built from, in any process."""

from dataclasses import dataclass

from jscan.inputs.config import Config
from jscan.pipeline.run.plan import ScanPlan


@dataclass(frozen=True)
class ScanJob:
    """What a scan's worker state is built from: small (the config and its O(blocks) plan)."""

    config: Config
    store: str
    plan: ScanPlan  # makes each block's positions from its index
    inputs_hash: str = ""  # fingerprint of the probe/positions/sample files (inputs_hash)
    bright_field_radius: float = 0.0  # m on the camera: the live page's virtual detector
    compilation_cache: str | None = None  # JAX's persistent compilation cache (private dir)
    store_id: str = ""  # the store's UUID (attribute store_id): checked before the first write
    generator: str | None = None  # "host", "device" or "none" (None: decided by each runner)
