"""The store of a scan: its Zarr v3 format (`format`), run state and validation (`state`),
whole-chunk reads (`chunks`), integrity checks and repair (`integrity`), the run lock
(`lock`), coordinates (`coords`), ground truth (`truth`), what it reads of a scan (`facts`)
and what it knows of zarr's bytes (`zarrbytes`).

The names of `format` and `state` are re-exported here: ``from jscan.pipeline.store import
create, check_store, open_scan``.
"""

from jscan.pipeline.store.format import (
    ARRAYS,
    BLOCK_ARRAYS,
    FORMAT,
    METADATA_ERRORS,
    codec_for,
    consolidate,
    create,
    exists,
    inner_chunk,
    location,
)
from jscan.pipeline.store.state import (
    append_history,
    block_crc,
    block_rows,
    blocks_done,
    check_id,
    check_replaceable,
    check_store,
    open_scan,
    per_position,
    read_attrs,
    run_state,
)

__all__ = [
    "ARRAYS",
    "BLOCK_ARRAYS",
    "FORMAT",
    "METADATA_ERRORS",
    "append_history",
    "block_crc",
    "block_rows",
    "blocks_done",
    "check_id",
    "check_replaceable",
    "check_store",
    "codec_for",
    "consolidate",
    "create",
    "exists",
    "inner_chunk",
    "location",
    "open_scan",
    "per_position",
    "read_attrs",
    "run_state",
]
