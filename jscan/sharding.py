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

    On accelerators the copy goes through the "pinned_host" memory kind (page-locked
    buffers: the DMA engine needs no staging copy); where that memory kind is missing,
    or on the CPU (where np.asarray shares the buffer), plain np.asarray.
    """
    if all(d.platform == "cpu" for d in x.devices()):
        return np.asarray(x)
    try:
        pinned = jax.device_put(x, x.sharding.with_memory_kind("pinned_host"))
    except (ValueError, NotImplementedError, jax.errors.JaxRuntimeError):
        return np.asarray(x)
    return np.asarray(pinned)
