"""simple_microscope over 4 forced host devices, in a subprocess (the device count is fixed
when JAX starts, so it cannot change inside this test process)."""

import textwrap
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jscan.core.sharding import data_mesh, padded_length, to_host

SCRIPT = textwrap.dedent(
    """
    import json
    import jax
    import jax.monitoring
    import numpy as np
    from jax.sharding import PartitionSpec as P

    import jscan
    from jscan.core import sharding
    from jscan.core.kernel import checked_origins, microscope_plan

    rng = np.random.default_rng(int(__import__("sys").argv[1]))
    LAM, DX, Z = 633e-9, 2e-6, 0.1
    H, W, N = 16, 24, 13
    SHAPE = (60, 70)

    def field(shape):
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)

    def positions():
        r = rng.integers(0, SHAPE[0] - H + 1, N) + H / 2 + rng.uniform(0.1, 0.9, N)
        c = rng.integers(0, SHAPE[1] - W + 1, N) + W / 2 + rng.uniform(0.1, 0.9, N)
        return np.stack([c * DX, r * DX], axis=1)

    compiles = []
    def listener(name, duration, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(name)
    jax.monitoring.register_event_duration_secs_listener(listener)

    probe = jscan.make_optical_wavefront(field((H, W)), LAM, DX)
    odx = 0.7 * LAM * Z / (W * DX * 1.3)
    args = (probe, 1.3, 15 * DX, Z, odx, (1.1 * DX, -0.6 * DX))
    sample, pos = jscan.make_sample_function(field(SHAPE), DX), positions()

    out = jscan.simple_microscope(sample, pos, *args)
    one_mesh = sharding.data_mesh(jax.devices()[:1])
    single = jscan.simple_microscope(sample, pos, *args, mesh=one_mesh)
    a, b = np.asarray(out.image_data), np.asarray(single.image_data)

    # The compiled kernel itself, before trimming the padding.
    specs, plan = microscope_plan(*args)
    mesh = sharding.data_mesh()
    origins = checked_origins(pos, SHAPE, (H, W), DX)
    padded = np.concatenate([origins, np.repeat(origins[:1], 3, axis=0)])
    compiled = sharding.compiled_microscope(specs, mesh)
    raw = compiled(sample.sample, padded, plan)
    cache = compiled._cache_size()

    before = len(compiles)
    sample2, pos2 = jscan.make_sample_function(field(SHAPE), DX), positions()
    out2 = jscan.simple_microscope(sample2, pos2, *args)
    again = jscan.simple_microscope(sample2, pos2, *args, mesh=one_mesh)

    second_compiles = len(compiles) - before
    cache_after = compiled._cache_size()

    # placement="exact": a distinct shift per position, then two shared ones
    def rel(x, y):
        x, y = np.asarray(x), np.asarray(y)
        return float(np.max(np.abs(x - y)) / np.max(y))

    each = jscan.simple_microscope(sample, pos, *args, placement="exact")
    each_one = jscan.simple_microscope(sample, pos, *args, placement="exact", mesh=one_mesh)
    half = np.where(np.arange(N)[:, None] % 2, 0.5, 0.25)
    tab_pos = (np.floor(pos / DX) + half) * DX
    tab = jscan.simple_microscope(sample, tab_pos, *args, placement="exact")
    tab_one = jscan.simple_microscope(sample, tab_pos, *args, placement="exact", mesh=one_mesh)
    # position by position (one device, one position per call) against 13 on 4 devices
    singles = [
        jscan.simple_microscope(sample, tab_pos[i : i + 1], *args, placement="exact",
                                mesh=one_mesh).image_data[0]
        for i in range(N)
    ]

    print(json.dumps({
        "exact_each_rel": rel(each.image_data, each_one.image_data),
        "exact_each_differs": rel(each.image_data, a) > 1e-3,
        "exact_table_rel": rel(tab.image_data, tab_one.image_data),
        "exact_table_vs_singles": rel(tab.image_data, np.stack(singles)),
        "exact_bitwise": [
            bool(np.array_equal(np.asarray(x.image_data), np.asarray(y)))
            for x, y in ((each, each_one.image_data), (tab, tab_one.image_data),
                         (tab, np.stack(singles)))
        ],
        "exact_devices": len(tab.image_data.sharding.device_set),
        "table_cache": sharding.compiled_microscope(specs, mesh, "table")._cache_size(),
        "device_count": jax.device_count(),
        "mesh_size": mesh.size,
        "shape": list(a.shape),
        "max_rel_diff": float(np.max(np.abs(a - b)) / np.max(b)),
        "bitwise": bool(np.array_equal(a, b)),
        "out_devices": len(out.image_data.sharding.device_set),
        "single_devices": len(single.image_data.sharding.device_set),
        "raw_spec_is_data": raw.sharding.spec == P("data"),
        "raw_shard_rows": sorted(s.data.shape[0] for s in raw.addressable_shards),
        "raw_devices": len({s.device for s in raw.addressable_shards}),
        "raw_matches": bool(np.array_equal(np.asarray(raw)[:N], a)),
        "second_compiles": second_compiles,
        "cache_before": cache,
        "cache_after": cache_after,
        "second_max_rel_diff": float(
            np.max(np.abs(np.asarray(out2.image_data) - np.asarray(again.image_data)))
            / np.max(np.asarray(again.image_data))
        ),
        "second_differs": not np.allclose(np.asarray(out2.image_data), a),
    }))
    """
)


def test_microscope_on_four_devices(rng, on_cpu_devices):
    got = on_cpu_devices(SCRIPT, int(rng.integers(2**31)))
    assert got["device_count"] == 4 and got["mesh_size"] == 4
    assert got["shape"] == [13, 16, 24]
    # Same kernel per position on 4 devices or 1: equal to float32 rounding (bitwise on CPU).
    assert got["max_rel_diff"] <= 1e-6
    # The kernel's output is split over the 4 devices, 16 = padded_length(13) rows in 4 shards;
    # trimming the 3 padding rows leaves an array on all 4 devices (replicated there).
    assert got["raw_spec_is_data"] and got["raw_devices"] == 4
    assert got["raw_shard_rows"] == [4, 4, 4, 4]
    assert got["raw_matches"]
    assert got["out_devices"] == 4 and got["single_devices"] == 1
    # New sample values and positions, same n and shapes: nothing compiles.
    assert got["second_compiles"] == 0
    assert got["cache_after"] == got["cache_before"] >= 1
    assert got["second_differs"] and got["second_max_rel_diff"] <= 1e-6
    # Exact placement, 13 positions on 4 devices (3 padding rows): distinct shifts and two
    # shared ones both equal the single-device result bit for bit, also one position per call
    # (a pattern depends on its own shift alone: bit-reproducible whatever the block size).
    assert got["table_cache"] >= 1
    assert got["exact_bitwise"] == [True, True, True]
    assert got["exact_each_rel"] <= 1e-6 and got["exact_each_differs"]
    assert got["exact_table_rel"] <= 1e-6 and got["exact_devices"] == 4
    assert got["exact_table_vs_singles"] <= 1e-5


@pytest.mark.parametrize(
    ("n", "size", "expected"), [(13, 4, 16), (16, 4, 16), (1, 4, 4), (5, 1, 5)]
)
def test_padded_length(n, size, expected):
    assert padded_length(n, SimpleNamespace(size=size)) == expected


@pytest.mark.parametrize("dtype", [np.float32, np.uint32, np.complex64])
def test_to_host_copies_every_byte(rng, dtype):
    """to_host returns a host ndarray equal to the device array, whatever path it takes
    (np.asarray on the CPU, the pinned_host memory kind on a GPU)."""
    values = (rng.normal(size=(7, 5, 3)) * 1000).astype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        values = values + 1j * rng.normal(size=values.shape).astype(np.float32)
    host = to_host(jnp.asarray(values))
    assert isinstance(host, np.ndarray)
    assert host.dtype == dtype and host.shape == values.shape
    np.testing.assert_array_equal(host, values)


def test_to_host_of_an_array_sharded_over_the_local_devices(rng):
    """The pipeline's own case: a block of patterns sharded over the "data" mesh axis."""
    mesh = data_mesh()
    values = rng.normal(size=(3 * mesh.size, 6, 4)).astype(np.float32)
    x = jax.device_put(values, NamedSharding(mesh, P("data")))
    np.testing.assert_array_equal(to_host(x), values)
