"""`jscan preview` of a partly finished store: missing positions grey, not zero."""

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
