"""Checks that a store's done blocks hold what was written: `verify` and `repair`.

Two levels:

- quick: every block marked done has its shard, and the shard is larger than its index,
  and its chunk of each other per-block array (the virtual detectors ``bright_field``,
  ``total``, ``com_x``, ``com_y`` and the coordinates ``x``, ``y``, ``scan_row`` ... that
  the worker writes) is there, whole (one listing per array; a deleted or emptied chunk is
  found);
- full: each such shard is also read back (the CRC32C of every inner chunk and of the shard
  index is checked while decoding) and the CRC32 of its patterns, x and y is compared with
  the one the worker recorded in ``block_checksum`` (reads the whole store); the block's
  detector chunks are decoded (CRC32C) and must equal those computed again from the
  patterns.

A missing shard cannot be seen by reading alone: zarr returns the fill value (zeros) for it,
which is why presence is checked against ``block_done``.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import zarr

from jscan.inputs.detectors import DETECTORS, block_detectors, masked_sums
from jscan.pipeline.store import (
    BLOCK_ARRAYS,
    block_crc,
    check_store,
    location,
    run_state,
)
from jscan.pipeline.store.chunks import DECODE_ERRORS, read_blocks
from jscan.pipeline.store.zarrbytes import plain_chunk_bytes, shard_index_bytes, stored_sizes

MAX_NAMED = 20  # bad blocks named in the one-line summary; the rest are counted


@dataclass(frozen=True)
class BlockFault:
    """One done block that is not sound."""

    block: int
    reason: str  # "shard missing", "shard truncated (N bytes)", "unreadable: ...", "checksum ..."


@dataclass(frozen=True)
class VerifyReport:
    """What `verify` found: the blocks checked and those that are not sound."""

    store: str
    n_blocks: int  # blocks in the store
    checked: int  # blocks marked done, all checked
    full: bool  # True: decoded and checksummed; False: presence and size only
    faults: tuple[BlockFault, ...] = ()
    truth: tuple[str, ...] = ()  # ground-truth arrays (probe, sample_truth) that are damaged

    @property
    def ok(self) -> bool:
        return not self.faults and not self.truth

    @property
    def bad_blocks(self) -> list[int]:
        return [f.block for f in self.faults]

    def named(self) -> str:
        """The bad blocks with why (the first MAX_NAMED)."""
        named = ", ".join(f"{f.block} ({f.reason})" for f in self.faults[:MAX_NAMED])
        more = len(self.faults) - MAX_NAMED
        return named + (f" and {more} more" if more > 0 else "")

    def line(self) -> str:
        """One line: all sound, or the bad blocks with why and how to repair them."""
        level = "decoded, checksums match" if self.full else "shards present"
        if self.ok:
            return f"{self.store}: {self.checked}/{self.n_blocks} blocks done, all sound ({level})"
        if not self.faults:
            return (
                f"{self.store}: its ground truth {', '.join(self.truth)} is damaged (written once "
                "when the store was made; --resume does not rewrite it): make the store again "
                "with --overwrite"
            )
        return (
            f"{self.store}: {len(self.faults)} of {self.checked} done blocks are damaged: "
            f"{self.named()}; re-run them with jscan simulate CONFIG --out {self.store} --resume "
            "--verify"
        )


def verify(
    store: str, full: bool = True, on_progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Check every block marked done: shard present and larger than its index; with full,
    also decoded and its CRC32 equal to ``block_checksum``.

    on_progress(k, n) is called after each of the n done blocks. Raises StoreError (one
    line) when the store's attributes or arrays are missing.
    """
    store = location(store)
    attrs = check_store(store)
    block = int(attrs["block_size"])
    arr = zarr.open_array(store, path="diffraction", mode="r")
    flags, lost = run_state(store, "block_done")
    sums, lost_sums = run_state(store, "block_checksum") if full else (None, [])
    done = np.flatnonzero(flags)
    sizes = stored_sizes(arr)
    floor = shard_index_bytes(arr)
    trailing = (0,) * (arr.ndim - 1)
    group = zarr.open_group(store, mode="r")
    per_block = {
        name: zarr.open_array(store, path=name, mode="r")
        for name in BLOCK_ARRAYS[1:]
        if name in group
    }
    detectors = {name: per_block[name] for name in DETECTORS}
    listed = {name: stored_sizes(d) for name, d in per_block.items()}
    camera = _camera(store, attrs) if full else None
    # full: every per-block array decoded whole, once (its CRC32C checked chunk by chunk)
    unreadable = {name: set(read_blocks(store, name)[1]) for name in per_block} if full else {}
    faults = [BlockFault(b, "block_done chunk unreadable") for b in lost]
    for k, b in enumerate(done):
        b = int(b)
        size = sizes.get(arr.metadata.encode_chunk_key((b, *trailing)))
        reason = _chunk_presence(per_block, listed, b) or next(
            (f"{name} chunk unreadable" for name, bad in unreadable.items() if b in bad), None
        )
        if b in lost_sums:
            reason = "block_checksum chunk unreadable"
        elif size is None:
            reason = "shard missing"
        elif size <= floor:
            reason = f"shard truncated ({size} bytes)"
        elif full and reason is None:
            rows = slice(b * block, (b + 1) * block)
            try:
                patterns = arr[rows]
                x, y = per_block["x"][rows], per_block["y"][rows]
            except DECODE_ERRORS as err:  # a CRC32C mismatch, a garbled index or codec stream
                reason = f"unreadable: {type(err).__name__}"
            else:
                if block_crc(patterns, x, y) != int(sums[b]):
                    reason = "checksum differs"
                else:
                    reason = _detector_values(detectors, camera, patterns, b * block)
        if reason is not None:
            faults.append(BlockFault(b, reason))
        if on_progress is not None:
            on_progress(k + 1, len(done))
    faults.sort(key=lambda f: f.block)
    truth = _damaged_truth(store) if full else ()
    n_blocks = int(attrs["n_blocks"])
    return VerifyReport(store, n_blocks, len(done) + len(lost), full, tuple(faults), truth)


def _damaged_truth(store) -> tuple[str, ...]:
    """The ground-truth arrays (probe, sample_truth when stored) with a chunk missing (it
    would read as zeros: every chunk is written at creation) or failing to decode."""
    group = zarr.open_group(store, mode="r")
    damaged = []
    for name in ("probe", "sample_truth"):
        if name not in group.array_keys():
            continue
        arr = group[name]
        grid = np.ceil(np.divide(arr.shape, arr.chunks)).astype(int)
        if len(stored_sizes(arr)) < int(np.prod(grid)):
            damaged.append(f"{name} (chunk missing)")
            continue
        try:
            arr[...]
        except DECODE_ERRORS as err:  # a CRC32C mismatch or a garbled codec stream
            damaged.append(f"{name} ({type(err).__name__})")
    return tuple(damaged)


def _chunk_presence(arrays, listed, b) -> str | None:
    """Why block b's chunks of the per-block ``arrays`` (one chunk per block, CRC32C alone)
    are not sound by their listing (missing, not the size of a whole chunk), or None."""
    for name, d in arrays.items():
        size = listed[name].get(d.metadata.encode_chunk_key((b,)))
        if size is None:
            return f"{name} chunk missing"
        whole = plain_chunk_bytes(d)
        if size != whole:
            return f"{name} chunk truncated ({size} of {whole} bytes)"
    return None


def _camera(store, attrs):
    """(det_y, det_x, bright-field mask) of the store, as the worker has them."""
    det_y = zarr.open_array(store, path="det_y", mode="r")[:]
    det_x = zarr.open_array(store, path="det_x", mode="r")[:]
    return det_y, det_x, np.hypot(det_y[:, None], det_x[None, :]) <= attrs["bright_field_radius_m"]


def _detector_values(detectors, camera, patterns, start) -> str | None:
    """Why the stored detectors of the block at ``start`` differ from those its patterns
    give, or None.

    Computed again as the worker did; compared to 1e-9 (relative, and for the centre also
    1e-9 of the camera's half width) rather than to the bit, since another machine's numpy
    may sum in another order.
    """
    det_y, det_x, mask = camera
    expected = block_detectors(patterns, det_y, det_x, masked_sums(patterns, mask))
    scale = max(np.abs(det_y).max(), np.abs(det_x).max())
    for name, d in detectors.items():
        try:
            found = d[start : start + len(patterns)]
        except DECODE_ERRORS as err:  # a CRC32C mismatch
            return f"{name} unreadable: {type(err).__name__}"
        atol = 1e-9 * scale if name.startswith("com") else 0.0
        if not np.allclose(found, expected[name], rtol=1e-9, atol=atol, equal_nan=True):
            return f"{name} differs from the patterns"
    return None


def repair(store: str, full: bool = False) -> VerifyReport:
    """`verify` the store and un-mark (``block_done`` 0) every damaged block so that a
    resumed run simulates it again, those a `jscan verify` recorded too (`recorded_damage`:
    a presence check does not see a block that decodes wrong). Returns the report, the
    recorded blocks among its faults."""
    report = verify(store, full=full)
    seen = set(report.bad_blocks)
    recorded = [
        BlockFault(b, "damaged when last verified")
        for b in recorded_damage(check_store(store))
        if b not in seen
    ]
    if recorded:
        faults = tuple(sorted((*report.faults, *recorded), key=lambda f: f.block))
        report = dataclasses.replace(report, faults=faults)
    if report.faults:
        done = zarr.open_array(location(store), path="block_done", mode="r+")
        for b in report.bad_blocks:
            done[b] = 0
    return report


def recorded_damage(attrs: dict) -> list[int]:
    """The blocks the last `jscan verify` found damaged (its ``verify`` record in the run
    history), unless a run has started since (it repaired them)."""
    for entry in reversed(attrs.get("run_history", [])):
        if entry.get("event") == "start":
            return []
        if entry.get("event") == "verify":
            return [int(b) for b in entry.get("bad_blocks", [])]
    return []
