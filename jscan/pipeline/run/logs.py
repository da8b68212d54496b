"""Where Dask's own log lines go during a run: a log file, not the terminal.

A run's terminal shows jscan's lines only (links, progress, one line for an error or an
interruption). The scheduler's, the nannies' and the workers' log records (a failing task's
traceback, a worker restarted, a connection closed at Ctrl-C) are appended to a log file:
by default ``STORE/jscan.log`` for a local store, a file in the temporary folder for a
store behind a URL, or the file that ``--log`` names. jscan's own error line points to it.
"""

import contextlib
import hashlib
import logging
import os
import signal
import tempfile
import threading

from distributed.diagnostics.plugin import WorkerPlugin

from jscan.pipeline.store.lock import is_local

LOG_NAME = "jscan.log"
FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
# Loggers that write to stderr in a Dask process (distributed's own configuration gives
# each its handler and stops propagation), and the root logger ("").
LOGGERS = (
    "",
    "distributed",
    "distributed.client",
    "distributed.gc",
    "bokeh",
    "tornado",
    "tornado.application",
    "asyncio",
)
BUFFER = 1000  # records kept while the log's folder does not exist yet


def default_log(store: str) -> str:
    """The run's log file [path]: ``STORE/jscan.log`` for a local store; for a store behind a
    URL, ``jscan-<hash of the URL>.log`` in the temporary folder."""
    if is_local(store):
        return os.path.join(os.path.abspath(store), LOG_NAME)
    digest = hashlib.sha256(store.encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"jscan-{digest}.log")


class DeferredFileHandler(logging.Handler):
    """Appends records to ``path`` once its folder exists; keeps them in memory until then.

    A new store's folder appears only when the store is complete (it is built under another
    name and renamed), after the cluster has started. The file is reopened when it was
    replaced or removed (a store replaced with --overwrite), as logging's
    WatchedFileHandler does.
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.pending: list[logging.LogRecord] = []
        self.stream = None
        self.identity = None
        self.setFormatter(logging.Formatter(FORMAT))

    def _reopen(self) -> bool:
        if not os.path.isdir(os.path.dirname(self.path) or "."):
            return False
        try:
            st = os.stat(self.path)
            identity = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            identity = None
        if self.stream is None or identity != self.identity:
            if self.stream is not None:
                self.stream.close()
            self.stream = open(self.path, "a", encoding="utf-8")  # kept open between records
            st = os.fstat(self.stream.fileno())
            self.identity = (st.st_dev, st.st_ino)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not self._reopen():
                if len(self.pending) < BUFFER:
                    self.pending.append(record)
                return
            for held in [*self.pending, record]:
                self.stream.write(self.format(held) + "\n")
            self.pending.clear()
            self.stream.flush()
        except Exception:  # a log line must never stop a run
            self.handleError(record)

    def close(self) -> None:
        with self.lock:
            if self.stream is not None:
                self.stream.close()
                self.stream = None
        super().close()


def _divert(handler: logging.Handler) -> list:
    """Give every logger of `LOGGERS` ``handler`` as its only handler; return what to restore."""
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate))
        logger.handlers[:] = [handler]
        logger.propagate = False
    return saved


@contextlib.contextmanager
def captured(path: str):
    """Within the block, this process's Dask and root log records go to ``path`` (appended),
    not to stderr; the loggers' handlers are restored after."""
    handler = DeferredFileHandler(path)
    saved = _divert(handler)
    try:
        yield handler
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers[:] = handlers
            logger.propagate = propagate
        handler.close()


class WorkerLogs(WorkerPlugin):
    """A worker process of the embedded cluster: log records to the run's log file, and
    Ctrl-C left to the client.

    Ctrl-C in a terminal interrupts every process of its group; the client stops the run
    and closes the cluster, so a worker ignores SIGINT rather than print its own
    KeyboardInterrupt traceback.
    """

    name = "jscan-logs"

    def __init__(self, path: str):
        self.path = path

    def setup(self, worker):
        _divert(DeferredFileHandler(self.path))
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
