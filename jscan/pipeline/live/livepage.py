"""Client side of the live scan page: register `page.ScanPage`, then feed it the receipts.

The scheduler side (the plugin, its HTTP handlers and the HTML) is `jscan.pipeline.live.page`,
which imports nothing from jscan: it is shipped to the scheduler by value.
"""

import warnings

import cloudpickle

from jscan.pipeline.live import page
from jscan.pipeline.live.receipt import BlockReceipt


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

    client: the run's Client; plan: its `ScanPlan` (whose `page_grid` the workers bin their
    bright field onto); store: the store's location; done_blocks, done_positions: what the
    store held at the start. When the page cannot be registered the run goes on without
    it (a RuntimeWarning says why) and ``link`` is None.
    """

    def __init__(self, client, plan, store: str, done_blocks: int, done_positions):
        self.client, self.link = client, None
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
                "grid": list(plan.page_grid.shape),
            },
        )

    def block(self, receipt: BlockReceipt) -> None:
        """Post one block's event: its bright field binned onto the grid, its binned last
        pattern."""
        if self.link is None:
            return
        pattern = receipt.pattern
        self.client.log_event(
            page.TOPIC,
            {
                "event": "block",
                "positions": receipt.positions,
                "cells": receipt.bf_cells.tolist(),
                "bf_sum": receipt.bf_sums.tolist(),
                "bf_count": receipt.bf_counts.tolist(),
                "pattern": {"shape": list(pattern.shape), "data": pattern.ravel().tolist()},
                "worker": receipt.worker,
                "seconds": receipt.seconds,
            },
        )

    def finish(self) -> None:
        if self.link is not None:
            self.client.log_event(page.TOPIC, {"event": "finish"})
