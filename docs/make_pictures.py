"""Regenerate the README's pictures: the live scan page mid-run and `jscan preview`.

    python docs/make_pictures.py     (needs Debian's chromium and matplotlib)

Runs a 10,000-position demo variant on a LocalCluster, screenshots the dashboard's scan
page in headless Chromium while the run goes on (docs/scan-page.png), then draws the
finished store (docs/preview.png).
"""

import tempfile
import threading
import time
from pathlib import Path

import distributed
import zarr

from jscan.inputs.config import DEMO_CONFIG, parse_config
from jscan.pipeline import simulate_scan
from jscan.pipeline.live.browser import screenshot
from jscan.preview import preview

HERE = Path(__file__).parent
CONFIG = (
    DEMO_CONFIG.replace('phantom = "siemens_star"', 'phantom = "cells"\nseed = 2')
    .replace("shape = [40, 40]", "shape = [100, 100]")
    .replace("step = 19.5e-6 ", "step = 9.5e-6 ")
    .replace("block_size = 256", "block_size = 64")
)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "scan.zarr"
        with (
            distributed.LocalCluster(
                n_workers=1, threads_per_worker=2, dashboard_address=":0"
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            run = threading.Thread(
                target=simulate_scan,
                args=(parse_config(CONFIG), store),
                kwargs={"client": client, "progress": False},
            )
            run.start()
            while (
                not (store / "block_done").exists()
                or zarr.open_array(store, path="block_done")[:].mean() < 0.4
            ):
                time.sleep(0.1)
            link = client.dashboard_link
            screenshot(
                link[: link.rfind("/") + 1] + "jscan-scan",
                HERE / "scan-page.png",
                Path(tmp) / "profile",
            )
            run.join()
        print(preview(store, HERE / "preview.png"))
    print(HERE / "scan-page.png")


if __name__ == "__main__":
    main()
