"""jscan: ptychography scan simulation at any scale."""

__version__ = "0.1.0"

# Every name is imported on first use (PEP 562): the forward models pull in JAX, the
# pipeline Dask, distributed, Zarr and xarray, and `jscan --help` or `jscan --version`
# need neither. name -> the module that defines it.
_LAZY = {
    "circular_aperture": "jscan.core.optics",
    "field_intensity": "jscan.core.optics",
    "optical_zoom": "jscan.core.optics",
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

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip __getattr__
        return value
    raise AttributeError(f"module 'jscan' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])


__all__ = sorted(_LAZY)
