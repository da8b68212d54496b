"""The live scan page on the scheduler's web server, fetched over HTTP and in Chromium."""

import json
import shutil
import threading
import time
import urllib.request

import numpy as np
import pytest

from jscan.inputs.config import parse_config
from jscan.pipeline import simulate_scan
from jscan.pipeline.live import page
from jscan.pipeline.live.browser import screenshot
from jscan.pipeline.live.receipt import MAX_GRID, PageGrid, binned, preview_pattern

distributed = pytest.importorskip("distributed")


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as reply:
        assert reply.status == 200
        return reply.read().decode()


def test_grid_cells_for_raster_and_binned_scans():
    assert MAX_GRID == page.MAX_GRID  # the worker bins to the grid the page accepts
    grid = PageGrid.of(300 * 400, None, (300, 400))
    cells = grid.cells(None, np.divmod(np.arange(300 * 400), 400))
    assert grid.shape == (256, 256) and cells.max() == 256 * 256 - 1
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 1e-3, (5000, 2)) * [2, 1]
    extent = tuple(zip(pos.min(axis=0), pos.max(axis=0), strict=True))
    grid = PageGrid.of(len(pos), extent)
    (gh, gw), cells = grid.shape, grid.cells(pos)
    assert gw == 2 * gh and cells.min() >= 0 and cells.max() < gh * gw
    # the left-most position lands in column 0, the right-most in the last one
    assert cells[pos[:, 0].argmin()] % gw == 0 and cells[pos[:, 0].argmax()] % gw == gw - 1
    # a block's summary: one entry per cell it touches, sums and counts kept
    values = rng.uniform(size=len(pos))
    touched, sums, counts = binned(cells, values)
    assert len(touched) <= gh * gw and counts.sum() == len(pos)
    np.testing.assert_allclose(sums.sum(), values.sum())
    k = len(touched) // 2
    np.testing.assert_allclose(sums[k], values[cells == touched[k]].sum())


def test_preview_pattern_bins_by_sums():
    image = np.random.default_rng(1).uniform(size=(256, 200))
    p = preview_pattern(image, side=64)
    assert p.shape == (64, 50) and p.dtype == np.float32
    assert np.isclose(p.sum(dtype=np.float64), image.sum())
    odd = np.random.default_rng(2).uniform(size=(65, 65))
    q = preview_pattern(odd, side=64)
    assert q.shape == (33, 33) and np.isclose(q.sum(dtype=np.float64), odd.sum())


def run_in_background(client, store, text):
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(
            ds=simulate_scan(parse_config(text), store, client=client, progress=False)
        )
    )
    thread.start()
    return thread, result


def page_url(client):
    link = client.dashboard_link
    return link[: link.rfind("/") + 1] + "jscan-scan"


def test_page_fills_in_while_the_run_goes_on(tmp_path, client, scan_config):
    text = scan_config(block_size=2, shape=(16, 16))  # 128 blocks
    thread, result = run_in_background(client, tmp_path / "live.zarr", text)
    url = page_url(client)
    seen = []
    deadline = time.time() + 120
    while thread.is_alive() and time.time() < deadline:
        try:
            data = json.loads(fetch(url + "/data.json"))
        except OSError:  # the route appears once the plugin is registered
            data = {"state": "idle"}
        if data["state"] == "running" and data["blocks"] > 0:
            seen.append(data)
        time.sleep(0.05)
    thread.join()
    assert "ds" in result
    assert seen, "never saw the run in progress"
    partial = seen[0]
    assert 0 < partial["blocks"] < 128
    final = json.loads(fetch(url + "/data.json"))
    assert final["state"] == "finished" and final["blocks"] == 128
    assert final["positions"] == final["total_positions"] == 256
    assert final["bf"]["shape"] == [16, 16]
    assert all(v is not None for v in final["bf"]["values"])
    assert sum(v is None for v in partial["bf"]["values"]) > 0  # it filled in block by block
    assert final["pattern"]["shape"] == [32, 32]
    # the workers table: the cluster's own workers, which did every block between them
    assert set(final["workers"]) <= set(client.scheduler_info(n_workers=-1)["workers"])
    assert sum(w["blocks"] for w in final["workers"].values()) == 128 and final["rate"] > 0
    # the bright field follows the sample: not a constant image
    assert np.std(final["bf"]["values"]) > 0.01 * np.mean(final["bf"]["values"])
    html = fetch(url)
    assert '<canvas id="bf"' in html and "data.json" in html
    # 128 block events were counted into the page's state, none kept in the event log
    assert client.get_events(page.TOPIC) == ()
    status = fetch(client.dashboard_link)
    assert 'href="jscan-scan"' in status  # listed in the dashboard's "More..." menu


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt install chromium)")
def test_page_renders_the_image_in_chromium(tmp_path, client, scan_config):
    text = scan_config(block_size=16, shape=(16, 16))
    thread, result = run_in_background(client, tmp_path / "shot.zarr", text)
    thread.join(120)
    assert "ds" in result
    shot = screenshot(
        page_url(client),
        tmp_path / "page.png",
        tmp_path / "profile",
        size=(900, 700),
        wait_ms=5000,
    )
    pixels = read_png(shot, max_rows=400)
    # the bright-field canvas sits top-left below the title: it holds viridis colours
    region = pixels[90:400, 20:400].reshape(-1, pixels.shape[-1])[:, :3].astype(int)
    colourful = np.abs(region[:, 0] - region[:, 2]) > 40  # viridis is never grey
    assert colourful.mean() > 0.2, "the page has no image"


def read_png(path, max_rows=None):
    """RGB(A) pixels of the top max_rows rows of a PNG, with the standard library only."""
    import struct
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, meta = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            meta = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour = meta[:4]
    assert depth == 8 and colour in (2, 6)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    height = min(height, max_rows or height)
    stride = width * channels
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if f == 0:
                v = line[x]
            elif f == 1:
                v = line[x] + a
            elif f == 2:
                v = line[x] + b
            elif f == 3:
                v = line[x] + (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                v = line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)
            cur[x] = v & 0xFF
        out[y] = cur
        prev = cur
    return out.reshape(height, width, channels)


@pytest.mark.slow
def test_existing_cluster_by_scheduler_file_serves_the_page(tmp_path, run_cli, scan_config):
    """`dask scheduler` + `dask worker` started by hand, then `jscan simulate
    --scheduler-file`: the run lands in the store and the remote scheduler serves the page."""
    import subprocess
    import sys

    sched_file = tmp_path / "scheduler.json"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--port",
                "0",
                "--dashboard-address",
                ":0",
                "--scheduler-file",
                str(sched_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    "--scheduler-file",
                    str(sched_file),
                    "--nthreads",
                    "2",
                    "--nworkers",
                    "1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        cfg = tmp_path / "scan.toml"
        cfg.write_text(scan_config(block_size=16))
        run = run_cli(
            "simulate",
            cfg,
            "--out",
            tmp_path / "remote.zarr",
            "--scheduler-file",
            sched_file,
            process=True,
        )
        assert run.code == 0, run.err
        lines = run.err.splitlines()
        assert lines[0].startswith("dashboard: http") and lines[1].startswith("scan page: http")
        data = json.loads(fetch(lines[1].split(": ", 1)[1] + "/data.json"))
        assert data["state"] == "finished" and data["positions"] == 144
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(60)


def test_page_builds_no_markup_from_data():
    """Every string reaches the page through textContent: no HTML parsing of event data."""
    from jscan.pipeline.live.page import PAGE

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in PAGE
    assert "textContent = text" in PAGE


def _start(grid=(4, 4)):
    return {
        "event": "start",
        "store": "/data/scan.zarr",
        "total_blocks": 2,
        "total_positions": 16,
        "done_blocks": 0,
        "done_positions": 0,
        "grid": list(grid),
    }


def _block(**changes):
    msg = {
        "event": "block",
        "positions": 2,
        "cells": [0, 1],
        "bf_sum": [1.5, 2.5],
        "bf_count": [1, 1],
        "pattern": {"shape": [2, 2], "data": [0.0, 1.0, 2.0, 3.0]},
        "worker": "tcp://127.0.0.1:40123",
        "seconds": 0.25,
    }
    msg.update(changes)
    return msg


HOSTILE = {
    "markup in worker": _block(worker="<img src=x onerror=alert(1)>"),
    "quote in worker": _block(worker='tcp://a:1" onmouseover="x'),
    "NaN in bf": _block(bf_sum=[float("nan"), 1.0]),
    "negative count": _block(bf_count=[1, -1]),
    "inf seconds": _block(seconds=float("inf")),
    "bf shorter than cells": _block(bf_sum=[1.0]),
    "counts shorter than cells": _block(bf_count=[1]),
    "cell outside the grid": _block(cells=[0, 16]),
    "negative cell": _block(cells=[-1, 0]),
    "bool count": _block(positions=True),
    "string count": _block(positions="2"),
    "huge pattern": _block(pattern={"shape": [65, 1], "data": [0.0] * 65}),
    "pattern data short": _block(pattern={"shape": [2, 2], "data": [0.0]}),
    "extra key": _block(html="<b>"),
    "missing key": {k: v for k, v in _block().items() if k != "seconds"},
    "too many cells": _block(
        cells=[0] * (2**20 + 1), bf_sum=[0.0] * (2**20 + 1), bf_count=[1] * (2**20 + 1)
    ),
    "unknown event": {"event": "__init__"},
    "not a dict": ["start"],
    "store not text": {**_start(), "store": ["<script>"]},
    "control character in store": {**_start(), "store": "a\nb"},
    "grid too large": _start(grid=(257, 4)),
    "grid of zero": _start(grid=(0, 4)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_invalid_events_are_dropped_and_counted(name):
    from jscan.pipeline.live.page import ScanPage, valid_event

    page = ScanPage()
    page.log_event("jscan-scan", _start())
    assert valid_event(_block(), (4, 4)) and valid_event({"event": "finish"})
    page.log_event("jscan-scan", HOSTILE[name])
    page.log_event("jscan-scan", _block())  # a good event after it still counts
    snap = page.snapshot()
    assert snap["dropped_events"] == 1 and snap["blocks"] == 1
    assert list(snap["workers"]) == ["tcp://127.0.0.1:40123"]
    assert snap["store"] == "/data/scan.zarr"


def test_a_block_before_any_start_is_dropped():
    from jscan.pipeline.live.page import ScanPage

    page = ScanPage()
    page.log_event("jscan-scan", _block())
    assert page.snapshot() == {"state": "idle", "dropped_events": 1}


def _page_registered(dask_scheduler):
    return "jscan-scan-page" in dask_scheduler.plugins


def test_hostile_event_through_a_real_scheduler_is_never_served(client):
    """Any scheduler client can post on the topic: markup in a worker name is dropped."""
    from jscan.pipeline.live.page import TOPIC, ScanPage

    if not client.run_on_scheduler(_page_registered):
        client.register_plugin(ScanPage())
    url = page_url(client) + "/data.json"
    client.log_event(TOPIC, _start())
    deadline = time.time() + 30
    while json.loads(fetch(url)).get("store") != "/data/scan.zarr" and time.time() < deadline:
        time.sleep(0.05)
    dropped = json.loads(fetch(url))["dropped_events"]
    client.log_event(TOPIC, _block(worker="<img src=x onerror=alert(document.cookie)>"))
    client.log_event(TOPIC, _block(bf_sum=[float("nan"), 0.0]))
    client.log_event(TOPIC, _block())
    while json.loads(fetch(url))["blocks"] < 1 and time.time() < deadline:
        time.sleep(0.05)
    text = fetch(url)
    data = json.loads(text)
    assert data["blocks"] == 1 and data["dropped_events"] == dropped + 2
    assert list(data["workers"]) == ["tcp://127.0.0.1:40123"]
    assert "<img" not in text and "onerror" not in text
    assert "innerHTML" not in fetch(page_url(client))


def dump_dom(url, profile_dir):
    """The page's DOM after its scripts ran, serialised by headless Chromium."""
    from jscan.pipeline.live.browser import headless_chromium

    return headless_chromium(url, profile_dir, "--dump-dom").stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt install chromium)")
def test_markup_in_a_valid_event_is_shown_as_text_in_chromium(tmp_path, client):
    """A store location is free text: markup in it reaches the page as text, not elements."""
    from jscan.pipeline.live.page import TOPIC, ScanPage

    if not client.run_on_scheduler(_page_registered):
        client.register_plugin(ScanPage())
    url = page_url(client)
    hostile = "<img src=x onerror=\"document.body.dataset.owned='yes'\">.zarr"
    client.log_event(TOPIC, {**_start(), "store": hostile})
    client.log_event(TOPIC, _block())
    deadline = time.time() + 30
    while json.loads(fetch(url + "/data.json")).get("blocks") != 1 and time.time() < deadline:
        time.sleep(0.05)
    dom = dump_dom(url, tmp_path / "profile")
    assert "&lt;img src=x onerror=" in dom  # the text, escaped by the serialiser
    assert "<img" not in dom and "data-owned" not in dom
    assert "<td>tcp://127.0.0.1:40123</td><td>1</td><td>2</td>" in dom  # the workers table
    assert "<th>worker</th>" in dom
    # Even a worker name that got past validation would be text in the table.
    client.run_on_scheduler(_plant_worker, name=hostile)
    dom = dump_dom(url, tmp_path / "profile")
    assert "<td>&lt;img src=x onerror=" in dom and "<img" not in dom, dom


def _plant_worker(dask_scheduler, name):
    workers = dask_scheduler.plugins["jscan-scan-page"].run["workers"]
    workers[name] = {"blocks": 1, "positions": 2, "busy_s": 1.0}
