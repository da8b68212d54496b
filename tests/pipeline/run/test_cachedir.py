"""The compilation cache folder: a private real directory, under folders nobody else can
swap, or refused with a fix that changes nothing shared."""

import os
import stat

import pytest

from jscan.errors import UsageError
from jscan.pipeline.run.cachedir import private_dir


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_created_private(tmp_path):
    old = os.umask(0o002)  # folders made here stay private whatever the umask
    try:
        path = private_dir(tmp_path / "a" / "cache")
    finally:
        os.umask(old)
    assert path == str(tmp_path / "a" / "cache") and mode(path) == 0o700
    assert mode(tmp_path / "a") == 0o700
    assert private_dir(path) == path  # and accepted again


def test_group_readable_is_accepted(tmp_path):
    (tmp_path / "cache").mkdir(mode=0o750)
    assert private_dir(tmp_path / "cache") == str(tmp_path / "cache")


def test_symlink_is_refused(tmp_path):
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UsageError, match="is a symbolic link"):
        private_dir(tmp_path / "link")


@pytest.mark.parametrize("bits", [0o770, 0o707, 0o777])
def test_writable_by_others_is_refused(tmp_path, bits):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache").chmod(bits)
    with pytest.raises(UsageError, match=r"writable by others \(mode 7") as info:
        private_dir(tmp_path / "cache")
    assert f"chmod go-w {tmp_path / 'cache'}" in str(info.value)


def test_file_is_refused(tmp_path):
    (tmp_path / "cache").write_text("")
    with pytest.raises(UsageError, match="is not a folder"):
        private_dir(tmp_path / "cache")


def test_world_writable_parent_without_sticky_bit_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UsageError, match=r"shared above it is writable by others") as info:
        private_dir(shared / "cache")
    assert "chmod" not in str(info.value) and "~/.cache/jscan-xla" in str(info.value)
    assert not (shared / "cache").exists()  # nothing made inside it
    shared.chmod(0o1777)  # with the sticky bit (as /tmp): others cannot swap the cache
    assert mode(private_dir(shared / "cache")) == 0o700


def test_group_writable_parent_is_refused(tmp_path):
    shared = tmp_path / "project"
    shared.mkdir()
    shared.chmod(0o775)
    with pytest.raises(UsageError, match="writable by others without the sticky bit"):
        private_dir(shared / "deep" / "cache")
    assert not (shared / "deep").exists()


def test_a_sticky_shared_folder_itself_is_never_told_to_change(tmp_path):
    """/tmp-like: the fix names a private folder inside it, not a chmod of it."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(UsageError) as info:
        private_dir(shared)
    message = str(info.value)
    assert "chmod" not in message and os.path.join(shared, "jscan-xla") in message


def test_tmp_itself_is_never_told_to_change():
    if not os.path.isdir("/tmp") or not stat.S_IMODE(os.stat("/tmp").st_mode) & 0o002:
        pytest.skip("no world-writable /tmp here")
    with pytest.raises(UsageError) as info:
        private_dir("/tmp")
    assert "chmod" not in str(info.value)
