"""jscan: ptychography scan simulation at any scale."""

from jscan.optics import circular_aperture, field_intensity, optical_zoom
from jscan.propagation import fraunhofer_prop, fraunhofer_prop_scaled
from jscan.scopes import (
    diffractogram_noscale,
    linear_interaction,
    simple_diffractogram,
    simple_microscope,
)
from jscan.types import (
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
    "optical_zoom",
    "simple_diffractogram",
    "simple_microscope",
]
