"""Device mesh, padding to the device count, and compiled-once sharded callables."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jscan.core.kernel import intensities, shift_table


def data_mesh(devices=None) -> Mesh:
    """1-D mesh with axis "data" over ``devices`` (default: this process's local devices)."""
    devices = jax.local_devices() if devices is None else list(devices)
    return Mesh(np.array(devices), ("data",))


def compiled_microscope(specs, mesh: Mesh, shifts: str | None = None):
    """jit of `intensities` for static ``specs``: sample and plan replicated, positions sharded.

    shifts: None (no sub-pixel shifts), "each" (one shift per position, sharded with the
    positions) or "table" (a replicated table of distinct shifts and a sharded index).
    jit's own cache then compiles once per (shapes, dtypes): new values never recompile.
    """
    return _compiled(specs, mesh, shifts)


@functools.lru_cache(maxsize=32)
def _compiled(specs, mesh: Mesh, shifts: str | None):
    data = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())
    extra = {None: (), "each": (data,), "table": (replicated, data)}[shifts]

    def kernel(sample, origins, plan, *shifts):
        return intensities(sample, origins, plan, specs, *shifts)

    return jax.jit(
        kernel,
        in_shardings=(replicated, data, replicated, *extra),
        out_shardings=data,
    )


def padded_length(n: int, mesh: Mesh) -> int:
    """Smallest multiple of the mesh size >= n."""
    return -(-n // mesh.size) * mesh.size


def run_sharded(specs, mesh: Mesh, sample, origins, plan, trim: bool = True, shifts=None):
    """Patterns (n, H, W): origins padded to a multiple of the device count, then trimmed.

    shifts: None, or the sub-pixel shift (n, 2) row, col [px] of each position. Host
    (numpy) shifts are grouped by `kernel.shift_table` (all zero: the unshifted kernel);
    traced ones are applied per position.
    A trimmed output whose n the device count does not divide is replicated on every
    device (JAX shards only evenly); trim=False keeps the padded rows and the sharding.
    """
    n = origins.shape[0]
    extra, mode = (), None
    if shifts is not None and isinstance(shifts, np.ndarray):
        grouped = shift_table(shifts, plan.illumination.shape[-2:])
        if grouped is not None:
            cdt = np.dtype(plan.illumination.dtype)
            ramps, index = grouped
            extra, mode = (tuple(r.astype(cdt) for r in ramps), index), "table"
    elif shifts is not None:
        extra, mode = (shifts,), "each"
    pad = padded_length(n, mesh) - n
    if pad:
        xp = np if isinstance(origins, np.ndarray) else jnp
        origins = xp.concatenate([origins, xp.repeat(origins[:1], pad, axis=0)])
        if extra:  # the last argument is per position: shifts ("each") or index ("table")
            last = extra[-1]
            xq = np if isinstance(last, np.ndarray) else jnp
            extra = (*extra[:-1], xq.concatenate([last, xq.repeat(last[:1], pad, axis=0)]))
    out = compiled_microscope(specs, mesh, mode)(sample, origins, plan, *extra)
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
