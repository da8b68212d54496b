"""A run's progress on the terminal: one redrawn line, and the totals of its receipts."""

import time

import numpy as np

from jscan.pipeline.live.receipt import BlockReceipt


def count(n: int, noun: str) -> str:
    """ "1 block", "7 blocks": n and the noun, plural unless n is 1."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def human(n_bytes: float) -> str:
    """Bytes in decimal units, three digits: 135 B, 1.5 GB, 320 MB."""
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if value < 999.5 or unit == "EB":
            break
        value /= 1000
    return f"{value:.3g} {unit}"


def bar(done: float, total: float, width: int = 30) -> str:
    """ "[#####-----]": the share done of total, ``width`` characters between brackets."""
    filled = int(width * done / max(total, 1))
    return f"[{'#' * filled}{'-' * (width - filled)}]"


class Progress:
    """Blocks and positions done, positions/s and ETA on ``stream`` (one line, redrawn).

    plan: the `ScanPlan`; done: the store's block_done (bool per block) at the start;
    stream: where to write, or None to count silently. The counts include the blocks done
    before the run; ``new_*`` count this run's receipts.
    """

    def __init__(self, plan, done: np.ndarray, stream=None):
        self.plan, self.stream = plan, stream
        self.tty = stream is not None and stream.isatty()
        self.blocks = int(done.sum())
        short = plan.n_blocks * plan.block_size - plan.n_positions  # the last block's gap
        self.positions = int(done.sum()) * plan.block_size - (short if done[-1] else 0)
        self.new_blocks = self.new_positions = self.new_bytes = 0
        self.t0 = self.last = time.perf_counter()

    def say(self, line: str) -> None:
        if self.stream is not None:
            print(line, file=self.stream, flush=True)

    def start(self, store: str, store_bytes: int, links=()) -> None:
        """Print the links ((label, url or None) pairs) and the work to do; start the clock."""
        for label, url in links:
            if url:
                self.say(f"{label}: {url}")
        p = self.plan
        self.say(
            f"{count(p.n_positions, 'position')} in {count(p.n_blocks, 'block')} of "
            f"{p.block_size}; "
            f"{p.n_blocks - self.blocks} to do -> {store} (at most {human(store_bytes)} "
            "uncompressed)"
        )
        self.t0 = self.last = time.perf_counter()

    def update(self, receipt: BlockReceipt) -> None:
        """Count a finished block; redraw the line (5 times a second on a terminal, else
        every 5 s, and at the last block)."""
        self.blocks += 1
        self.positions += receipt.positions
        self.new_blocks += 1
        self.new_positions += receipt.positions
        self.new_bytes += receipt.bytes
        now = time.perf_counter()
        final = self.blocks == self.plan.n_blocks
        if self.stream is None or not (final or now - self.last > (0.2 if self.tty else 5.0)):
            return
        self.last = now
        total = self.plan.n_positions
        rate = self.new_positions / max(now - self.t0, 1e-9)
        eta = (total - self.positions) / rate if rate > 0 else float("inf")
        line = (
            f"{bar(self.positions, total)} blocks {self.blocks}/{self.plan.n_blocks}"
            f"  positions {self.positions}/{total}  {rate:,.0f} pos/s  ETA {eta:,.0f} s"
        )
        end = "\r" if self.tty and not final else "\n"
        print(("\r" if self.tty else "") + line, end=end, file=self.stream, flush=True)

    def finish(self, store: str) -> dict:
        """Print the run's summary; return its totals for the store's history: blocks,
        positions (this run's) and seconds since `start`."""
        wall = time.perf_counter() - self.t0
        n = self.new_positions
        self.say(
            f"done: {count(n, 'position')} in {count(self.new_blocks, 'block')}, {wall:.1f} s, "
            f"{n / max(wall, 1e-9):,.0f} pos/s, "
            f"{self.new_bytes / max(wall, 1e-9) / 1e6:,.1f} MB/s of patterns -> {store}"
        )
        return {"blocks": self.new_blocks, "positions": n, "seconds": round(wall, 3)}
