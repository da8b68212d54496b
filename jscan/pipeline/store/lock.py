"""The run lock of a local store, and the atomic creation that hands it over.

``flock`` on ``STORE/.jscan-run.lock``: the operating system releases it when the process
ends, however it ends. A new store is built in a hidden sibling folder that already holds
its lock, then renamed into place, so a crash never leaves a half store at its path.
"""

import errno
import fcntl
import glob
import os
import shutil
import socket
import stat
import time
import uuid

from jscan.errors import StoreError

LOCK_NAME = ".jscan-run.lock"


def is_local(store: str) -> bool:
    """True for a path on this machine's file system (not a URL)."""
    return "://" not in str(store)


def sibling(store: str, kind: str) -> str:
    """A hidden folder beside ``store`` (``.NAME.<kind>-<uuid>``) for building or discarding."""
    parent, name = os.path.split(os.path.abspath(store))
    return os.path.join(parent, f".{name}.{kind}-{uuid.uuid4().hex}")


def clean_stale(store: str) -> None:
    """Remove the temporary folders that crashed runs left beside ``store``.

    A folder whose lock is still held belongs to a live run and is kept; one without a lock
    file is kept for a minute (its run may be about to take the lock).
    """
    parent, name = os.path.split(os.path.abspath(store))
    for kind in ("creating", "replaced"):
        for path in glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(name)}.{kind}-*")):
            lock = os.path.join(path, LOCK_NAME)
            if not os.path.lexists(lock):
                if time.time() - os.lstat(path).st_mtime > 60:
                    shutil.rmtree(path, ignore_errors=True)
                continue
            try:
                fd = open_lock(lock)
            except StoreError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run's folder
            finally:
                os.close(fd)
            shutil.rmtree(path, ignore_errors=True)


def publish(tmp: str, store: str, replace: bool) -> None:
    """Rename a finished layout to ``store``; with replace, swap out what is there."""
    if replace and os.path.lexists(store):
        old = sibling(store, "replaced")
        os.rename(store, old)
        os.rename(tmp, store)
        shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.rename(tmp, store)  # atomic; refuses a folder that is not empty
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        with RunLock(store):  # another run made it meanwhile: name it if it is still running
            pass
        raise StoreError(
            f"{store} was created meanwhile by another run; pass --resume to finish it or "
            "--overwrite to replace it"
        ) from None


def open_lock(path: str) -> int:
    """Open (or create, mode 0600) a lock file without following a symbolic link."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise StoreError(
                f"{path} is a symbolic link; jscan does not follow it (it could point at "
                f"another file); remove the link: rm {path}"
            ) from None
        raise StoreError(
            f"cannot open the run lock {path} ({err.strerror}); check the path"
        ) from None


class RunLock:
    """An exclusive lock on a local store, so two runs cannot write one store at once.

    The lock is ``flock`` on ``STORE/.jscan-run.lock``: the operating system releases it when
    the process ends, however it ends, so a crashed or killed run never leaves it behind.
    The file is opened with O_NOFOLLOW (a planted symbolic link is refused, nothing is
    truncated) and created with mode 0600. Stores behind URLs (object stores) are not locked.
    """

    def __init__(self, store: str | None, hold: bool = True):
        self.path = None
        self.fds: dict[str, int] = {}  # folder -> descriptor of its lock file
        self.store = store if store is not None and is_local(store) else None
        self.hold = hold
        if self.store is not None:
            self.path = os.path.join(self.store, LOCK_NAME)

    def __enter__(self):
        if self.hold and self.store is not None:
            self.take(self.store)
        return self

    def take(self, folder: str) -> None:
        """Lock ``folder``'s lock file and write this process's pid in it, or StoreError
        naming the run that holds it. A store behind a URL is not locked: nothing is done."""
        if not is_local(folder):
            return
        path = os.path.join(folder, LOCK_NAME)
        fd = open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "owner unknown"
            os.close(fd)
            raise StoreError(
                f"another jscan run is writing this store ({owner}); wait for it to finish"
            ) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:  # a hard link to another file
            os.close(fd)
            raise StoreError(
                f"{path} is not a plain file of its own (it has {st.st_nlink} names or is "
                f"special); jscan will not write to it: remove it (rm {path})"
            )
        os.fchmod(fd, 0o600)  # also a lock file made by an older jscan
        os.ftruncate(fd, 0)  # only once the lock is ours
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self.fds[folder] = fd

    def moved(self, old: str, new: str) -> None:
        """The locked folder ``old`` was renamed to ``new`` (the lock goes with the file).

        A lock held on what was at ``new`` (a store just replaced) is released first.
        """
        self.release(new)
        self.fds[new] = self.fds.pop(old)
        self.path = os.path.join(new, LOCK_NAME)

    def release(self, folder: str | None = None) -> None:
        for key in [folder] if folder is not None else list(self.fds):
            fd = self.fds.pop(key, None)
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def __exit__(self, *exc):
        self.release()
