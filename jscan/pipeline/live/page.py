"""A live scan page on the Dask dashboard: ``<dashboard>/jscan-scan`` (scheduler side).

`ScanPage` is a scheduler plugin. The client (`jscan.pipeline.live.livepage.LivePage`) registers
it at the start of a run (embedded or remote scheduler alike; it is pickled by value, so
the scheduler needs no jscan, and this module imports nothing from jscan) and then forwards
each block's receipt as a ``jscan-scan`` event: the block's bright field already binned onto
the page's grid (at most MAX_GRID^2 cells) and its last pattern binned to at most 64^2. The
plugin keeps a small state of fixed size (counts, rates, the bright-field image, the latest
pattern), removes each of its events from the scheduler's event log once counted (so a
week-long run does not fill the scheduler with them), and serves
an HTML page that polls ``jscan-scan/data.json`` every second. It is listed in the
dashboard's "More..." menu.
"""

import json
import math
import time

import numpy as np
from distributed.diagnostics.plugin import SchedulerPlugin
from tornado import web

TOPIC = "jscan-scan"
ROUTE = "jscan-scan"
MAX_GRID = 256  # bright-field image cells per side (receipt.MAX_GRID, which the worker bins to)


class ScanPage(SchedulerPlugin):
    """Scheduler plugin behind the live scan page."""

    name = "jscan-scan-page"

    def __init__(self):
        self.run = None
        self.dropped = 0  # events refused by `valid_event`: counted, never shown

    async def start(self, scheduler):
        self.scheduler = scheduler
        app = getattr(scheduler, "http_application", None)
        if app is None:
            return
        state = {"plugin": self}
        app.add_handlers(
            r".*",
            [
                (rf"/{ROUTE}/data.json", _DataHandler, state),
                (rf"/{ROUTE}/?", _PageHandler, state),
            ],
        )
        try:  # the "More..." menu lists this page (dashboard present with bokeh)
            from distributed.dashboard.scheduler import template_variables

            plots = template_variables(scheduler)["plots"]
            if not any(p["url"] == ROUTE for p in plots):
                plots.append({"url": ROUTE, "name": "jscan scan"})
        except Exception:  # distributed's internals may change: the page works without it
            pass

    def log_event(self, topic, msg):
        # Any client of the scheduler can post on the topic: only well-formed events count.
        if topic != TOPIC:
            return
        if not valid_event(msg, self.run["grid"] if self.run else None):
            self.dropped += 1
            return
        {"start": self._on_start, "block": self._on_block, "finish": self._on_finish}[msg["event"]](
            msg
        )
        # Counted into the state above: the scheduler's copy of the event is not needed.
        broker = getattr(getattr(self, "scheduler", None), "_broker", None)
        if broker is not None:  # distributed's event log (Broker.truncate, 2024.1 and later)
            broker.truncate(TOPIC)

    def _on_start(self, msg):
        gh, gw = msg["grid"]
        self.run = {
            "store": msg["store"],
            "total_blocks": msg["total_blocks"],
            "total_positions": msg["total_positions"],
            "blocks": msg["done_blocks"],
            "positions": msg["done_positions"],
            "start_positions": msg["done_positions"],
            "t0": time.time(),
            "state": "running",
            "grid": (gh, gw),
            "bf_sum": np.zeros(gh * gw),
            "bf_count": np.zeros(gh * gw),
            "rates": [],
            "workers": {},
            "pattern": None,
        }

    def _on_block(self, msg):
        run = self.run
        if run is None:
            return
        run["blocks"] += 1
        run["positions"] += msg["positions"]
        cells = np.asarray(msg["cells"], np.int64)  # msgpack may hand lists over as tuples
        np.add.at(run["bf_sum"], cells, np.asarray(msg["bf_sum"], np.float64))
        np.add.at(run["bf_count"], cells, np.asarray(msg["bf_count"], np.int64))
        run["pattern"] = msg["pattern"]
        w = run["workers"].setdefault(msg["worker"], {"blocks": 0, "positions": 0, "busy_s": 0.0})
        w["blocks"] += 1
        w["positions"] += msg["positions"]
        w["busy_s"] += msg["seconds"]
        elapsed = time.time() - run["t0"]
        rate = (run["positions"] - run["start_positions"]) / max(elapsed, 1e-9)
        run["rates"].append((round(elapsed, 2), round(rate, 1)))
        if len(run["rates"]) > 2000:  # keep the chart light on week-long runs
            run["rates"] = run["rates"][::2]

    def _on_finish(self, msg):
        if self.run is not None:
            self.run["state"] = "finished"

    def snapshot(self):
        """The page's data as plain JSON-able values."""
        run = self.run
        if run is None:
            return {"state": "idle", "dropped_events": self.dropped}
        elapsed = time.time() - run["t0"]
        new = run["positions"] - run["start_positions"]
        rate = new / elapsed if elapsed > 0 else 0.0
        left = run["total_positions"] - run["positions"]
        with np.errstate(invalid="ignore", divide="ignore"):
            bf = run["bf_sum"] / run["bf_count"]
        return {
            "state": run["state"],
            "store": run["store"],
            "blocks": run["blocks"],
            "total_blocks": run["total_blocks"],
            "positions": run["positions"],
            "total_positions": run["total_positions"],
            "rate": rate,
            "eta_s": left / rate if rate > 0 else None,
            "rates": run["rates"],
            "workers": {
                k: {**v, "pos_per_s": v["positions"] / v["busy_s"] if v["busy_s"] else 0.0}
                for k, v in run["workers"].items()
            },
            "bf": {
                "shape": run["grid"],
                "values": [None if not np.isfinite(v) else float(v) for v in bf],
            },
            "pattern": run["pattern"],
            "dropped_events": self.dropped,
        }


MAX_TEXT = 4096  # characters of the store location shown
MAX_CELLS = 1 << 20  # positions in one block event
MAX_COUNT = 2**53  # blocks and positions: exact in a JSON number
# a worker as Dask names it: tcp://10.0.0.5:40123, tls://[::1]:8786, inproc://..., a name
_WORKER_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/[]@%+-_"
)


def _count(x, high=MAX_COUNT) -> bool:
    return type(x) is int and 0 <= x <= high


def _number(x) -> bool:
    return type(x) in (int, float) and math.isfinite(x)


def _numbers(xs, length=None, high=MAX_CELLS) -> bool:
    if not isinstance(xs, list | tuple) or len(xs) > high:
        return False
    return (length is None or len(xs) == length) and all(_number(x) for x in xs)


def valid_event(msg, grid=None) -> bool:
    """True when ``msg`` is a scan-page event of the right types, sizes and ranges.

    start: store (text), total/done blocks and positions (counts), grid (two sides in
    1..MAX_GRID); block: positions (count), cells (grid indices of the run's grid), bf_sum
    (finite numbers) and bf_count (counts) of equal length, pattern ({"shape": [h, w] in
    1..64, "data": h*w finite numbers}), worker (a Dask address or name), seconds (finite,
    >= 0); finish: nothing else.
    grid: the current run's (rows, cols), without which a block event is refused.
    """
    if not isinstance(msg, dict):
        return False
    kind = msg.get("event")
    fields = (
        {
            "start": {
                "event",
                "store",
                "total_blocks",
                "total_positions",
                "done_blocks",
                "done_positions",
                "grid",
            },
            "block": {
                "event",
                "positions",
                "cells",
                "bf_sum",
                "bf_count",
                "pattern",
                "worker",
                "seconds",
            },
            "finish": {"event"},
        }.get(kind)
        if isinstance(kind, str)
        else None
    )
    if fields is None or set(msg) != fields:
        return False
    if kind == "start":
        store, g = msg["store"], msg["grid"]
        return (
            isinstance(store, str)
            and len(store) <= MAX_TEXT
            and store.isprintable()
            and all(_count(msg[k]) for k in fields if k.startswith(("total", "done")))
            and isinstance(g, list | tuple)
            and len(g) == 2
            and all(_count(v, MAX_GRID) and v >= 1 for v in g)
        )
    if kind == "block":
        if grid is None:
            return False
        cells, pattern, worker = msg["cells"], msg["pattern"], msg["worker"]
        counts = msg["bf_count"]
        n_cells = grid[0] * grid[1]
        if not (
            _count(msg["positions"])
            and isinstance(cells, list | tuple)
            and len(cells) <= MAX_CELLS
            and all(_count(c, n_cells - 1) for c in cells)
            and _numbers(msg["bf_sum"], len(cells))
            and isinstance(counts, list | tuple)
            and len(counts) == len(cells)
            and all(_count(c, MAX_COUNT) for c in counts)
            and isinstance(worker, str)
            and 0 < len(worker) <= 256
            and set(worker) <= _WORKER_CHARS
            and _number(msg["seconds"])
            and msg["seconds"] >= 0
            and isinstance(pattern, dict)
            and set(pattern) == {"shape", "data"}
        ):
            return False
        shape = pattern["shape"]
        return (
            isinstance(shape, list | tuple)
            and len(shape) == 2
            and all(_count(v, 64) and v >= 1 for v in shape)
            and _numbers(pattern["data"], shape[0] * shape[1])
        )
    return True


class _Handler(web.RequestHandler):
    def initialize(self, plugin):
        self.plugin = plugin


class _PageHandler(_Handler):
    def get(self):
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(PAGE)


class _DataHandler(_Handler):
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps(self.plugin.snapshot()))


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>jscan scan</title>
<style>
body { font-family: sans-serif; margin: 16px; background: #fafafa; color: #222; }
h1 { font-size: 20px; margin: 0 0 8px; }
#summary { font-size: 15px; margin-bottom: 12px; }
.row { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
.panel { background: #fff; border: 1px solid #ddd; padding: 8px; }
.panel h2 { font-size: 14px; margin: 0 0 6px; }
canvas { image-rendering: pixelated; display: block; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border-bottom: 1px solid #eee; padding: 2px 8px; text-align: right; }
</style></head><body>
<h1>jscan scan</h1>
<div id="summary">waiting for a run...</div>
<div class="row">
 <div class="panel"><h2>virtual bright field (grey: not yet simulated)</h2>
  <canvas id="bf" width="384" height="384"></canvas></div>
 <div class="panel"><h2>latest diffraction pattern (log scale)</h2>
  <canvas id="pattern" width="256" height="256"></canvas></div>
</div>
<div class="row" style="margin-top:16px">
 <div class="panel"><h2>positions/s</h2><canvas id="rate" width="384" height="160"></canvas></div>
 <div class="panel"><h2>workers</h2><table id="workers"></table></div>
</div>
<script>
function viridis(t) {
  const c = [[68,1,84],[59,82,139],[33,145,140],[94,201,98],[253,231,37]];
  t = Math.min(1, Math.max(0, t)) * 4; const i = Math.min(3, Math.floor(t)), f = t - i;
  return c[i].map((v, k) => Math.round(v + f * (c[i + 1][k] - v)));
}
function drawImage(id, h, w, values, log) {
  const cv = document.getElementById(id), ctx = cv.getContext('2d');
  const img = ctx.createImageData(w, h);
  let lo = Infinity, hi = -Infinity;
  const v = values.map(x => x === null ? null : (log ? Math.log10(1 + Math.max(0, x)) : x));
  v.forEach(x => { if (x !== null) { lo = Math.min(lo, x); hi = Math.max(hi, x); } });
  for (let i = 0; i < h * w; i++) {
    const rgb = v[i] === null ? [150, 150, 150] : viridis((v[i] - lo) / ((hi - lo) || 1));
    img.data.set([...rgb, 255], 4 * i);
  }
  const off = document.createElement('canvas'); off.width = w; off.height = h;
  off.getContext('2d').putImageData(img, 0, 0);
  const s = Math.min(cv.width / w, cv.height / h);
  ctx.imageSmoothingEnabled = false; ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, cv.width, cv.height); ctx.drawImage(off, 0, 0, w * s, h * s);
}
function drawRates(rates) {
  const cv = document.getElementById('rate'), ctx = cv.getContext('2d');
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!rates.length) return;
  const tmax = Math.max(...rates.map(r => r[0]), 1e-9);
  const rmax = Math.max(...rates.map(r => r[1]), 1e-9);
  ctx.strokeStyle = '#3b528b'; ctx.lineWidth = 2; ctx.beginPath();
  rates.forEach((r, i) => {
    const x = 30 + (cv.width - 40) * r[0] / tmax;
    const y = cv.height - 20 - (cv.height - 30) * r[1] / rmax;
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  });
  ctx.stroke(); ctx.fillStyle = '#222'; ctx.font = '11px sans-serif';
  ctx.fillText(Math.round(rmax).toLocaleString() + ' pos/s', 32, 12);
  ctx.fillText(tmax.toFixed(0) + ' s', cv.width - 40, cv.height - 5);
}
function fmt(s) {
  return s === null ? '-' : s < 90 ? s.toFixed(0) + ' s' : (s / 60).toFixed(1) + ' min';
}
async function tick() {
  try {
    const url = location.pathname.replace(/\\/?$/, '/') + 'data.json';
    const d = await (await fetch(url, {cache: 'no-store'})).json();
    if (d.state !== 'idle') {
      document.getElementById('summary').textContent =
        `${d.state}: blocks ${d.blocks}/${d.total_blocks}, positions ` +
        `${d.positions.toLocaleString()}/${d.total_positions.toLocaleString()}, ` +
        `${Math.round(d.rate).toLocaleString()} pos/s, ETA ${fmt(d.eta_s)} - ${d.store}`;
      drawImage('bf', d.bf.shape[0], d.bf.shape[1], d.bf.values, false);
      const p = d.pattern;
      if (p) drawImage('pattern', p.shape[0], p.shape[1], p.data, true);
      drawRates(d.rates);
      const rows = [['worker', 'blocks', 'positions', 'pos/s busy']].concat(
        Object.entries(d.workers).map(([k, w]) => [k, String(w.blocks), String(w.positions),
          Math.round(w.pos_per_s).toLocaleString()]));
      document.getElementById('workers').replaceChildren(...rows.map((cells, i) => {
        const tr = document.createElement('tr');
        cells.forEach(text => {
          const td = document.createElement(i ? 'td' : 'th');
          td.textContent = text;  // text, never markup: names come from scheduler clients
          tr.appendChild(td);
        });
        return tr;
      }));
    }
  } catch (e) { document.getElementById('summary').textContent = 'no data: ' + e; }
}
tick(); setInterval(tick, 1000);
</script></body></html>
"""
