"""The compilation cache folder: private to its user, or refused.

JAX's persistent compilation cache holds executables that workers load and run, so
whoever can write the folder, or replace it through a parent folder, can run code as
this user. The folder itself must be a real directory (not a symbolic link) owned by the
user and writable by nobody else; every folder above it must be owned by root or the user
and writable by nobody else unless it has the sticky bit (as /tmp has: there others
cannot rename or delete what is not theirs).
"""

import os
import stat

from jscan.errors import UsageError

_ELSEWHERE = "use a folder of your own, e.g. --compile-cache ~/.cache/jscan-xla"


def private_dir(path: str) -> str:
    """Create (mode 0700) or check the compilation cache folder; return its absolute path.

    Raises UsageError naming the folder (or the parent) that makes it unsafe.
    """
    path = os.path.abspath(os.path.expanduser(str(path)))
    _check_parents(path)
    missing = []
    up = path
    while not os.path.lexists(up):
        missing.append(up)
        up = os.path.dirname(up)
    for folder in reversed(missing):  # private from the first missing folder down
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError as err:
            raise UsageError(f"compilation cache (--compile-cache) {path}: {err}") from None
    st = os.lstat(path)
    where = f"compilation cache (--compile-cache) {path}"
    if stat.S_ISLNK(st.st_mode):
        raise UsageError(
            f"{where} is a symbolic link (it can be re-pointed); give the real folder, or "
            + _ELSEWHERE.removeprefix("use ")
        )
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{where} is not a folder; {_ELSEWHERE}")
    if st.st_uid != os.getuid():
        raise UsageError(f"{where} is owned by uid {st.st_uid}, not you; {_ELSEWHERE}")
    if st.st_mode & 0o022:
        mode = f"mode {stat.S_IMODE(st.st_mode):o}"
        if st.st_mode & stat.S_ISVTX:  # a shared folder by design (like /tmp): leave it so
            fix = f"use a private folder inside it, e.g. {os.path.join(path, 'jscan-xla')}"
        else:
            fix = f"chmod go-w {path}, or {_ELSEWHERE}"
        raise UsageError(f"{where} is writable by others ({mode}); {fix}")
    return path


def _check_parents(path: str) -> None:
    """UsageError when a folder above ``path`` lets another user replace it."""
    parent = os.path.realpath(os.path.dirname(path))
    while True:
        if os.path.exists(parent):
            st = os.stat(parent)
            sticky = st.st_mode & stat.S_ISVTX
            mode = f"mode {stat.S_IMODE(st.st_mode):o}"
            if st.st_mode & 0o022 and not sticky:
                raise UsageError(
                    f"compilation cache (--compile-cache) {path}: the folder {parent} above it "
                    f"is writable by others without the sticky bit ({mode}), so they could "
                    f"replace the cache; {_ELSEWHERE}"
                )
            if st.st_uid not in (0, os.getuid()):
                raise UsageError(
                    f"compilation cache (--compile-cache) {path}: the folder {parent} above it "
                    f"belongs to uid {st.st_uid}, who could replace the cache; {_ELSEWHERE}"
                )
        up = os.path.dirname(parent)
        if up == parent:
            return
        parent = up
