"""jscan: ptychography scan simulation at any scale."""

from jscan.core.optics import circular_aperture, field_intensity, optical_zoom
from jscan.core.propagation import fraunhofer_prop, fraunhofer_prop_scaled
from jscan.core.scopes import (
    diffractogram_noscale,
    linear_interaction,
    simple_diffractogram,
    simple_microscope,
)
from jscan.core.types import (
    Diffractogram,
    MicroscopeData,
    OpticalWavefront,
    SampleFunction,
    make_diffractogram,
    make_microscope_data,
    make_optical_wavefront,
    make_sample_function,
)

__version__ = "0.1.0"

# The pipeline pulls in Dask, distributed, Zarr and xarray: import it on first use, so that
# `import jscan` for the forward models alone stays light (PEP 562; jscan.pipeline's own
# table says which module holds each name).
_PIPELINE = {"simulate_scan", "open_scan"}


def __getattr__(name):
    if name in _PIPELINE:
        import jscan.pipeline

        return getattr(jscan.pipeline, name)
    raise AttributeError(f"module 'jscan' has no attribute {name!r}")


__all__ = [
    "Diffractogram",
    "MicroscopeData",
    "OpticalWavefront",
    "SampleFunction",
    "circular_aperture",
    "diffractogram_noscale",
    "field_intensity",
    "fraunhofer_prop",
    "fraunhofer_prop_scaled",
    "linear_interaction",
    "make_diffractogram",
    "make_microscope_data",
    "make_optical_wavefront",
    "make_sample_function",
    "open_scan",
    "optical_zoom",
    "simple_diffractogram",
    "simple_microscope",
    "simulate_scan",
]
