"""`ScanFacts`: what the store reads of a checked scan, stated here in the store.

The run layer's `jscan.pipeline.run.spec.ScanSpec` provides it (`describe` decides each fact
once); the store never imports the run layer, so the contract between the two is this
protocol rather than that class.
"""

from typing import Any, Protocol, runtime_checkable

import numpy as np

from jscan.inputs.config import Config
from jscan.inputs.detector_model import DetectorModel, PatternValues


@runtime_checkable
class ScanFacts(Protocol):
    """The facts of a scan that its store's layout, coordinates and attributes hold."""

    @property
    def config(self) -> Config: ...

    @property
    def plan(self) -> Any: ...  # `jscan.pipeline.run.plan.ScanPlan`

    @property
    def probe(self) -> np.ndarray: ...  # (H, W) or (M, H, W), unit power

    @property
    def detector(self) -> DetectorModel: ...

    @property
    def values(self) -> PatternValues: ...

    @property
    def bright_field_radius(self) -> float: ...

    @property
    def inputs(self) -> str: ...

    @property
    def camera(self) -> tuple: ...  # rows' and columns' axes, each with ``centres`` [m]

    @property
    def photons_per_intensity(self) -> float: ...

    @property
    def region(self) -> tuple[int, int, int, int]: ...

    @property
    def codec(self) -> Any: ...

    @property
    def attrs(self) -> dict: ...
