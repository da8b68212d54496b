"""`jscan preview` of a partly finished store: missing positions grey, not zero."""

import re

import numpy as np
import pytest


def test_preview_of_a_partly_finished_store(tmp_path, run_cli, partial_store):
    pytest.importorskip("matplotlib")
    store = partial_store([0, 1, 2, 5], dose=1e4)
    out = tmp_path / "preview.png"
    code, stdout, _ = run_cli("preview", store, "--out", out)
    assert code == 0 and stdout.strip() == str(out)
    import matplotlib.image

    pixels = matplotlib.image.imread(out)[..., :3]
    grey = np.all(np.abs(pixels - 0.75) < 0.02, axis=-1)  # missing positions: grey 0.75
    assert 0.05 < grey.mean() < 0.6
    assert pixels.std() > 0.1  # not a blank figure


def test_preview_of_a_non_store_exits_2(tmp_path, run_cli):
    (tmp_path / "x").mkdir()
    code, _, err = run_cli("preview", tmp_path / "x", "--out", tmp_path / "p.png")
    assert code == 2 and "not a Zarr store" in err
    assert not (tmp_path / "p.png").exists()


def garble(path):
    """Same length, other bytes: any read of it fails its CRC32C."""
    path.write_bytes(bytes(b ^ 0x5A for b in path.read_bytes()))


def test_preview_reads_only_the_patterns_it_draws(tmp_path, run_cli, partial_store):
    pytest.importorskip("matplotlib")
    from pathlib import Path

    from jscan.preview import pattern_picks

    store = Path(partial_store(range(9), dose=1e4))
    drawn = {int(i) // 16 for i in pattern_picks(np.ones(144, bool), 4)}
    assert drawn == {0, 2, 5, 8}
    # Every other block's shard, and every detector chunk but the bright field's, garbled:
    # reading any of them raises.
    for b in set(range(9)) - drawn:
        garble(store / "diffraction" / "c" / str(b) / "0" / "0")
    for name in ("total", "com_x", "com_y"):
        for b in range(9):
            garble(store / name / "c" / str(b))
    code, _, err = run_cli("preview", store, "--out", tmp_path / "p.png")
    assert code == 0, err
    # The control: a garbled shard that preview draws fails it (one line, exit 1).
    garble(store / "diffraction" / "c" / "5" / "0" / "0")
    code, _, err = run_cli("preview", store, "--out", tmp_path / "q.png")
    assert code == 1 and re.search(r"(?i)checksum|crc", err) and "jscan verify" in err, err


def test_binned_raster_keeps_means_and_gaps():
    from jscan.preview import MAX_SIDE, binned_raster

    rng = np.random.default_rng(0)
    image = rng.random((3000, 2100))
    image[:1500] = np.nan  # not simulated
    image[2000, 7] = np.nan
    out = binned_raster(image)
    f = 3  # ceil(3000 / 1024)
    assert out.shape == (1000, 700) and max(out.shape) <= MAX_SIDE
    assert np.isnan(out[:500]).all() and np.isfinite(out[500:]).all()
    np.testing.assert_allclose(out[510, 300], image[1530:1533, 900:903].mean())
    np.testing.assert_allclose(out[2000 // f, 2], np.nanmean(image[1998:2001, 6:9]))
    small = rng.random((40, 30))
    assert binned_raster(small) is small


def test_binned_scatter_is_bounded_and_marks_cells_not_done():
    from jscan.preview import MAX_SIDE, binned_scatter

    rng = np.random.default_rng(1)
    n = 2_000_000
    x, y = rng.uniform(0, 100, n), rng.uniform(0, 50, n)
    values = x.copy()
    done = x < 60
    mean, waiting, extent = binned_scatter(x, y, values, done)
    assert mean.shape == (512, 1024) and max(mean.shape) <= MAX_SIDE
    assert extent == [x.min(), x.max(), y.max(), y.min()]
    cols = (np.arange(1024) + 0.5) * (x.max() - x.min()) / 1024 + x.min()
    inside = cols < 59.9
    # Each cell's value is the mean of its positions' values (here their x).
    np.testing.assert_allclose(np.nanmean(mean[:, inside], axis=0), cols[inside], atol=0.1)
    assert np.isnan(mean[:, cols > 60.1]).all() and np.isnan(mean[waiting]).all()
    assert waiting[:, cols > 60.1].mean() > 0.9  # the rest: cells that no position fell in
    assert not waiting[:, inside].any()
