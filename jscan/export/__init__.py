"""`jscan export`: a store's done blocks to the files that reconstruction engines read.

Formats (h5py, the optional extra ``[export]``), streamed block by block (one block of
patterns in memory at a time), each block's CRC32 checked against ``block_checksum``:

- ``cxi``: one CXI 1.6 file, as ptychodus's CXI readers take it (`write_cxi`);
- ``ptychodus``: a folder with ptychodus's ``diffraction.h5`` and ``product.h5``
  (`write_ptychodus`);
- ``ptylab``: one PtyLab CPM ``.h5`` file (`write_ptylab`);
- ``nexus``: one NeXus NXcxi_ptycho file with the ground truth (`write_nexus`).

A store with blocks not done is refused unless ``partial`` is set: then only the done blocks'
positions are written, and the index arrays say which positions they are.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass

from jscan.errors import UsageError
from jscan.export.cxi import write_cxi
from jscan.export.nexus import check_nexus, nexus_warnings, write_nexus
from jscan.export.ptychodus import ptychodus_warnings, write_ptychodus
from jscan.export.ptylab import check_ptylab, ptylab_warnings, write_ptylab
from jscan.export.source import Bar, ScanSource

__all__ = ["FORMATS", "ExportReport", "ScanSource", "export"]


@dataclass(frozen=True)
class Format:
    """A format's writer(src, out, bar) -> late warnings or None, the refusals it makes
    before anything is written (check(src, out)), what it cannot carry (warn(src)) and
    whether its object holds a thick sample's slices (layers)."""

    write: Callable[[ScanSource, str, Bar], list[str] | None]
    check: Callable[[ScanSource, str], None] | None = None
    warn: Callable[[ScanSource], list[str]] | None = None
    layers: bool = False


WRITERS = {
    "cxi": Format(write_cxi, warn=ptychodus_warnings),
    "ptychodus": Format(write_ptychodus, warn=ptychodus_warnings, layers=True),
    "ptylab": Format(write_ptylab, check_ptylab, ptylab_warnings),
    "nexus": Format(write_nexus, check_nexus, nexus_warnings),
}
FORMATS = tuple(WRITERS)


@dataclass(frozen=True)
class ExportReport:
    """What `export` wrote."""

    out: str
    format: str
    positions: int  # patterns written
    blocks: int  # blocks written
    skipped_blocks: int  # blocks not done (partial export)
    warnings: tuple[str, ...] = ()


_STDERR = object()  # sys.stderr as it is when export runs


def export(store: str, fmt: str, out: str, partial: bool = False, stream=_STDERR):
    """Export a store's done blocks as ``fmt`` (one of `FORMATS`) to ``out``; return an
    `ExportReport`.

    partial: allow a store with blocks not done (only the done ones are written; without it
    StoreError); stream: where the progress bar and warnings go (None: silent). UsageError
    when h5py is missing, the format is unknown or cannot take this store.
    """
    if stream is _STDERR:
        stream = sys.stderr
    if fmt not in WRITERS:
        raise UsageError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise UsageError("jscan export needs h5py: pip install 'jscan[export]'") from None
    form = WRITERS[fmt]
    src = ScanSource(store, partial=partial)
    if form.check:
        form.check(src, out)
    warnings = src.sampling_warnings() + src.truth_warnings(form.layers)
    warnings += form.warn(src) if form.warn else []
    if src.skipped:
        warnings.insert(0, f"{src.skipped} blocks not done are left out (--partial)")
    _say(stream, warnings)
    late = form.write(src, out, Bar(stream, len(src.blocks), f"export {fmt}")) or []
    _say(stream, late)
    warnings += late
    return ExportReport(out, fmt, src.n_rows, len(src.blocks), src.skipped, tuple(warnings))


def _say(stream, warnings) -> None:
    for line in warnings if stream is not None else ():
        print(f"jscan export: warning: {line}", file=stream)
