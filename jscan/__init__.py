"""jscan: ptychography scan simulation at any scale."""

__version__ = "0.1.0"

# Every public name is imported on first use (PEP 562): the forward models pull in JAX and
# the pipeline Dask, distributed, Zarr and xarray, and a process needs only what it uses
# (the client of a run never starts JAX; `jscan --help` imports neither).
_LAZY = {
    "circular_aperture": "jscan.core.optics",
    "field_intensity": "jscan.core.optics",
    "optical_zoom": "jscan.core.optics",
    "angular_spectrum_prop": "jscan.core.fresnel",
    "make_thick_sample": "jscan.core.fresnel",
    "multislice_interaction": "jscan.core.fresnel",
    "near_field_prop_scaled": "jscan.core.fresnel",
    "ThickSample": "jscan.core.fresnel",
    "Aberrations": "jscan.core.probes",
    "lens_probe": "jscan.core.probes",
    "zone_plate_probe": "jscan.core.probes",
    "fraunhofer_prop": "jscan.core.propagation",
    "fraunhofer_prop_scaled": "jscan.core.propagation",
    "diffractogram_noscale": "jscan.core.scopes",
    "linear_interaction": "jscan.core.scopes",
    "simple_diffractogram": "jscan.core.scopes",
    "simple_microscope": "jscan.core.scopes",
    "Diffractogram": "jscan.core.types",
    "MicroscopeData": "jscan.core.types",
    "OpticalWavefront": "jscan.core.types",
    "SampleFunction": "jscan.core.types",
    "make_diffractogram": "jscan.core.types",
    "make_microscope_data": "jscan.core.types",
    "make_optical_wavefront": "jscan.core.types",
    "make_sample_function": "jscan.core.types",
    "simulate_scan": "jscan.pipeline",
    "open_scan": "jscan.pipeline",
    "simulate_lazy": "jscan.pipeline",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jscan' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Aberrations",
    "Diffractogram",
    "MicroscopeData",
    "OpticalWavefront",
    "SampleFunction",
    "ThickSample",
    "angular_spectrum_prop",
    "circular_aperture",
    "diffractogram_noscale",
    "field_intensity",
    "fraunhofer_prop",
    "fraunhofer_prop_scaled",
    "lens_probe",
    "linear_interaction",
    "make_diffractogram",
    "make_microscope_data",
    "make_optical_wavefront",
    "make_sample_function",
    "make_thick_sample",
    "multislice_interaction",
    "near_field_prop_scaled",
    "open_scan",
    "optical_zoom",
    "simple_diffractogram",
    "simple_microscope",
    "simulate_lazy",
    "simulate_scan",
    "zone_plate_probe",
]
