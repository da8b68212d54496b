"""Client side of the live scan page: register `page.ScanPage`, then feed it the receipts.

The scheduler side (the plugin, its HTTP handlers and the HTML) is `jscan.pipeline.page`,
which imports nothing from jscan: it is shipped to the scheduler by value.
"""

import math
import warnings

import cloudpickle
import numpy as np

from jscan.pipeline import page
from jscan.pipeline.plan import ScanPlan
from jscan.pipeline.receipt import BlockReceipt


def bright_field_grid(positions, raster):
    """(cells, shape): each position's flat cell in a grid of at most MAX_GRID per side.

    positions: (n, 2) x, y [m]; raster: (scan_row, scan_col) or None.
    """
    if raster is not None:
        rows, cols = int(raster[0].max()) + 1, int(raster[1].max()) + 1
        gh, gw = min(rows, page.MAX_GRID), min(cols, page.MAX_GRID)
        r, c = raster[0] * gh // rows, raster[1] * gw // cols
    else:
        lo, hi = positions.min(axis=0), positions.max(axis=0)
        span = np.maximum(hi - lo, 1e-300)
        side = int(min(page.MAX_GRID, max(8, math.sqrt(len(positions)))))
        gw = max(1, round(side * span[0] / span.max()))
        gh = max(1, round(side * span[1] / span.max()))
        c = np.minimum(((positions[:, 0] - lo[0]) / span[0] * gw).astype(int), gw - 1)
        r = np.minimum(((positions[:, 1] - lo[1]) / span[1] * gh).astype(int), gh - 1)
    return (r * gw + c).astype(np.int64), (int(gh), int(gw))


def _has_plugin(dask_scheduler, name):
    return name in dask_scheduler.plugins


def register_page(client) -> None:
    """Register the scan page once per scheduler; later runs reuse it ("start" resets it)."""
    if client.run_on_scheduler(_has_plugin, name=page.ScanPage.name):
        return
    # By value: a remote scheduler needs no jscan to serve the page.
    cloudpickle.register_pickle_by_value(page)
    try:
        client.register_plugin(page.ScanPage())
    finally:
        cloudpickle.unregister_pickle_by_value(page)


class LivePage:
    """Registers the dashboard's scan page on the scheduler and feeds it block receipts.

    client: the run's Client; plan: its `ScanPlan`; store: the store's location;
    done_blocks, done_positions: what the store held at the start. When the page cannot be
    registered the run goes on without it (a RuntimeWarning says why) and ``link`` is None.
    """

    def __init__(self, client, plan: ScanPlan, store: str, done_blocks: int, done_positions):
        self.client, self.plan, self.link = client, plan, None
        self.cells, grid = bright_field_grid(plan.positions, plan.raster)
        try:
            register_page(client)
        except Exception as err:  # the run goes on without its page
            warnings.warn(
                f"the jscan scan page is unavailable: {err}", RuntimeWarning, stacklevel=3
            )
            return
        link = client.dashboard_link
        self.link = link[: link.rfind("/") + 1] + page.ROUTE if link else None
        client.log_event(
            page.TOPIC,
            {
                "event": "start",
                "store": store,
                "total_blocks": plan.n_blocks,
                "total_positions": plan.n_positions,
                "done_blocks": int(done_blocks),
                "done_positions": int(done_positions),
                "grid": list(grid),
            },
        )

    def block(self, receipt: BlockReceipt) -> None:
        """Post one block's event: its cells, bright-field sums and binned last pattern."""
        if self.link is None:
            return
        start, stop = self.plan.block_range(receipt.block)
        pattern = receipt.pattern
        self.client.log_event(
            page.TOPIC,
            {
                "event": "block",
                "positions": receipt.positions,
                "cells": self.cells[start:stop].tolist(),
                "bf": receipt.bright_field.tolist(),
                "pattern": {"shape": list(pattern.shape), "data": pattern.ravel().tolist()},
                "worker": receipt.worker,
                "seconds": receipt.seconds,
            },
        )

    def finish(self) -> None:
        if self.link is not None:
            self.client.log_event(page.TOPIC, {"event": "finish"})
