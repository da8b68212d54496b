"""Resources are checked before anything is written: a block beyond a worker's memory
and a store beyond the free disk are refused in one line, by arithmetic, before the probe
or the sample is read."""

import math
import shutil

import pytest

from jscan.errors import ConfigError
from jscan.inputs.config import parse_config
from jscan.pipeline import simulate_scan
from jscan.pipeline.run.plan import plan_scan

distributed = pytest.importorskip("distributed")


def _centred_no_noise(small_scan):
    """The small scan with the aperture on the axis and no [detector] section (no noise)."""
    cfg = small_scan()
    del cfg["optics"]["aperture_center"], cfg["detector"]
    return cfg


def test_block_larger_than_worker_memory(tmp_path, tree, small_scan, to_toml):
    """A 1 GiB worker cannot hold two blocks of 1024 patterns of 256 x 256."""
    cfg = _centred_no_noise(small_scan)
    cfg["probe"]["size"] = 256
    cfg["sample"]["shape"] = [400, 400]
    cfg["scan"].update(shape=[32, 32], step=2.0e-6)
    cfg["optics"]["aperture_diameter"] = 200.0e-6
    cfg["run"]["block_size"] = 1024
    cfg = parse_config(to_toml(cfg))
    before = tree(tmp_path)
    # A cluster of its own: one worker with a 1 GiB memory limit.
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=True,
            dashboard_address=":0",
            memory_limit="1GiB",
        ) as cluster,
        distributed.Client(cluster) as c,
        pytest.raises(ConfigError, match=r'"run.block_size" = 1024: a block needs about') as info,
    ):
        simulate_scan(cfg, tmp_path / "s.zarr", client=c, progress=False)
    message = str(info.value)
    assert "memory_limit is 1.07 GB" in message and "use --block-size" in message
    fits = int(message.split("use --block-size ")[1].split()[0])
    assert 1 <= fits < 1024
    assert tree(tmp_path) == before


def _too_big_for_the_disk(small_scan, folder):
    """(config dict, raster side): 1024 x 1024 patterns (4 MiB each), twice as many as the
    free space of ``folder`` holds."""
    free = shutil.disk_usage(folder).free
    side = math.ceil(math.sqrt(2 * free / (4 << 20)))
    cfg = _centred_no_noise(small_scan)
    cfg["probe"].update(size=1024, waist=100.0e-6)
    cfg["optics"]["aperture_diameter"] = 2.0e-3
    cfg["optics"]["camera_pixel_size"] = 500e-9 * 0.02 / 1024e-6  # the natural pixel
    cfg["sample"]["shape"] = [side + 1040, side + 1040]
    cfg["scan"].update(shape=[side, side], step=1.0e-6)
    return cfg, side


def test_a_store_too_large_for_the_disk_is_refused_before_the_sample_is_read(
    refused, tmp_path, tree, run_cli, small_scan, to_toml, monkeypatch
):
    """Size arithmetic comes first: the disk's refusal comes before the sample's values
    are read (here reading them would stop the test)."""
    from jscan.pipeline.run import checks

    def read(config):
        raise AssertionError("the sample was read before the size was checked")

    monkeypatch.setattr(checks, "check_inputs", read)
    cfg, _ = _too_big_for_the_disk(small_scan, tmp_path)
    (tmp_path / "big.toml").write_text(to_toml(cfg))
    before = tree(tmp_path)
    out = run_cli("simulate", tmp_path / "big.toml", "--out", tmp_path / "big.zarr")
    refused(out.code, out.err, "--out")
    assert "free; free some space" in out.err
    assert tree(tmp_path) == before


def test_store_larger_than_free_disk_is_refused_unless_forced(
    refused, tmp_path, tree, run_cli, small_scan, to_toml
):
    """1024 x 1024 patterns (4 MiB each), twice as many as the free space holds."""
    cfg, side = _too_big_for_the_disk(small_scan, tmp_path)
    cfg["run"]["block_size"] = side * side
    (tmp_path / "big.toml").write_text(to_toml(cfg))
    before = tree(tmp_path)
    out = run_cli("simulate", tmp_path / "big.toml", "--out", tmp_path / "big.zarr", process=True)
    refused(out.code, out.err, "--out")
    assert "free; free some space, choose another --out, or pass --force when" in out.err
    assert "=True" not in out.err  # the command line speaks of flags, not keywords
    assert tree(tmp_path) == before
    # --force passes the disk check; the blocks then cannot fit in a worker's memory
    forced = run_cli(
        "simulate", tmp_path / "big.toml", "--out", tmp_path / "big.zarr", "--force", process=True
    )
    refused(forced.code, forced.err, '"run.block_size"')
    assert tree(tmp_path) == before


def _block_beyond_any_embedded_worker(small_scan):
    """(config dict): 4096^2 windows, two blocks of 256 positions: hundreds of GB, beyond
    the embedded worker of any machine the suite runs on (asserted by the caller)."""
    cfg = _centred_no_noise(small_scan)
    cfg["probe"].update(size=4096, waist=400.0e-6)
    cfg["optics"]["aperture_diameter"] = 8.0e-3
    cfg["optics"]["camera_pixel_size"] = 500e-9 * 0.02 / 4096e-6  # the natural pixel
    cfg["sample"]["shape"] = [4200, 4200]
    cfg["scan"].update(shape=[32, 16], step=1.0e-6)
    cfg["run"]["block_size"] = 256
    return cfg


@pytest.mark.parametrize("command", ["check", "simulate"])
def test_a_block_beyond_the_embedded_worker_is_refused_before_the_probe_or_sample_is_read(
    refused, tmp_path, tree, run_cli, small_scan, to_toml, monkeypatch, command
):
    """With no cluster given, the embedded worker's memory_limit is known before it starts
    (`cluster.embedded_workers`): a block it cannot hold is refused by arithmetic, before
    the probe or the sample is read (here reading them would stop the test)."""
    from jscan.pipeline.run import checks
    from jscan.pipeline.run.cluster import embedded_workers

    def read(config):
        raise AssertionError("the probe or the sample was read before the block's memory")

    monkeypatch.setattr(checks, "check_inputs", read)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    cfg = _block_beyond_any_embedded_worker(small_scan)
    (tmp_path / "big.toml").write_text(to_toml(cfg))
    config = parse_config(to_toml(cfg))
    need = 2 * checks.block_memory(config, plan_scan(config))
    assert need > embedded_workers(None)[0].memory_limit, "a machine with this much memory"
    before = tree(tmp_path)
    out_flag = ["--out", tmp_path / "big.zarr", "--force"] if command == "simulate" else []
    out = run_cli(command, tmp_path / "big.toml", *out_flag)
    refused(out.code, out.err, '"run.block_size" = 256')
    assert "2 at once (one per thread) on the embedded worker, whose memory_limit is" in out.err
    # one thread per worker halves the need, and the advice follows it
    one = run_cli(command, tmp_path / "big.toml", "--threads", "1", *out_flag)
    refused(one.code, one.err, '"run.block_size" = 256')
    assert "at once" not in one.err
    advice = [int(o.err.split("use --block-size ")[1].split()[0]) for o in (out, one)]
    assert 1 <= advice[0] <= advice[1] // 2 + 1
    assert tree(tmp_path) == before
