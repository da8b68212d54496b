"""Device mesh, padding to the device count, and compiled-once sharded callables."""

import functools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jscan.forward import intensities


def data_mesh(devices=None) -> Mesh:
    """1-D mesh with axis "data" over ``devices`` (default: this process's local devices)."""
    devices = jax.local_devices() if devices is None else list(devices)
    return Mesh(np.array(devices), ("data",))


@functools.lru_cache(maxsize=32)
def compiled_microscope(specs, mesh: Mesh):
    """jit of `intensities` for static ``specs``: sample and plan replicated, positions sharded.

    jit's own cache then compiles once per (shapes, dtypes): new values never recompile.
    """
    data = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())
    return jax.jit(
        partial(intensities, specs=specs),
        in_shardings=(replicated, data, replicated),
        out_shardings=data,
    )


def padded_length(n: int, mesh: Mesh) -> int:
    """Smallest multiple of the mesh size >= n."""
    return -(-n // mesh.size) * mesh.size


def run_sharded(specs, mesh: Mesh, sample, origins, plan, trim: bool = True):
    """Patterns (n, H, W): origins padded to a multiple of the device count, then trimmed.

    A trimmed output whose n the device count does not divide is replicated on every
    device (JAX shards only evenly); trim=False keeps the padded rows and the sharding.
    """
    n = origins.shape[0]
    pad = padded_length(n, mesh) - n
    if pad:
        xp = np if isinstance(origins, np.ndarray) else jnp
        origins = xp.concatenate([origins, xp.repeat(origins[:1], pad, axis=0)])
    out = compiled_microscope(specs, mesh)(sample, origins, plan)
    return out[:n] if pad and trim else out


def to_host(x) -> np.ndarray:
    """Copy a device array to host memory by the fastest path found.

    One CUDA device, CuPy installed: the bytes go straight into page-locked memory from
    CuPy's pinned pool (one DMA copy; freed buffers return to the pool, so no page is
    locked twice). Other accelerators: through the "pinned_host" memory kind. On the CPU,
    or where neither is available, plain np.asarray (which shares the buffer on the CPU).
    """
    devices = x.devices()
    if all(d.platform == "cpu" for d in devices):
        return np.asarray(x)
    if len(devices) == 1 and next(iter(devices)).platform == "gpu":
        host = _cupy_to_host(x)
        if host is not None:
            return host
    try:
        pinned = jax.device_put(x, x.sharding.with_memory_kind("pinned_host"))
    except (ValueError, NotImplementedError, jax.errors.JaxRuntimeError):
        return np.asarray(x)
    return np.asarray(pinned)


@functools.cache
def _cupy():
    """CuPy if it is installed and sees a CUDA device, else None (an optional speed-up)."""
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception:  # not installed, or no usable CUDA runtime: use JAX's own copy
        return None
    return cupy


def _cupy_to_host(x):
    """x copied by CuPy into a buffer of its pinned-memory pool, or None without CuPy."""
    cupy = _cupy()
    if cupy is None:
        return None
    device = next(iter(x.devices())).local_hardware_id
    with cupy.cuda.Device(device):
        src = cupy.from_dlpack(x)  # a view of x's device buffer, no copy
        mem = cupy.cuda.alloc_pinned_memory(src.nbytes)
        out = np.frombuffer(mem, src.dtype, src.size).reshape(src.shape)  # keeps mem alive
        src.get(out=out)
        cupy.cuda.get_current_stream().synchronize()
    return out
