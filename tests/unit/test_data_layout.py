"""move_no_clobber on file systems without hard links (exFAT, FAT32, SMB) or rename flags (FUSE)."""
import ctypes
import errno
import os

import pytest
from loguru import logger

from services.common import data_layout
from services.common.data_layout import DataLayout, MoveMethod, fallback, move_no_clobber
from services.recorder.handoff import Outcome, hand_off
from tests.unit.test_segment_handoff import SEGMENT, put

real_link = os.link


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    monkeypatch.setattr(data_layout, "_methods", {})


@pytest.fixture
def calls():
    return {"link": 0, "renameat2": 0}


@pytest.fixture
def no_links(monkeypatch, calls):
    """os.link as exFAT answers it: EEXIST for a taken name (the kernel checks first), else EPERM."""
    def link(source, target):
        calls["link"] += 1
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "File exists", str(target))
        raise PermissionError(errno.EPERM, "Operation not permitted", str(source))
    monkeypatch.setattr(os, "link", link)


@pytest.fixture
def no_rename_flags(monkeypatch, no_links, calls):
    """renameat2 as exfat-fuse answers it: EEXIST for a taken name, else EINVAL."""
    def renameat2(_dirfd, _source, _dirfd2, target, _flags):
        calls["renameat2"] += 1
        ctypes.set_errno(errno.EEXIST if os.path.lexists(target) else errno.EINVAL)
        return -1
    monkeypatch.setattr(data_layout, "_renameat2", renameat2)


@pytest.fixture(params=["link", "renameat2", "checked rename"])
def mode(request):
    """Each file system kind: hard links; no hard links; neither hard links nor rename flags."""
    if request.param != "link":
        request.getfixturevalue("no_links")
    if request.param == "checked rename":
        request.getfixturevalue("no_rename_flags")
    return request.param


@pytest.fixture
def log_lines():
    lines: list[str] = []
    sink = logger.add(lines.append, format="{level} {message}")
    yield lines
    logger.remove(sink)


def files(tmp_path, *names):
    (tmp_path / "from").mkdir()
    (tmp_path / "into").mkdir()
    for name in names:
        (tmp_path / "from" / name).write_text(f"new {name}")
    return tmp_path / "from", tmp_path / "into"


def test_every_mode_moves_the_file(tmp_path, mode):
    source, into = files(tmp_path, "a.mp4")
    move_no_clobber(source / "a.mp4", into / "a.mp4")
    assert (into / "a.mp4").read_text() == "new a.mp4"
    assert not (source / "a.mp4").exists()


def test_every_mode_never_overwrites(tmp_path, mode):
    source, into = files(tmp_path, "a.mp4")
    (into / "a.mp4").write_text("older")
    with pytest.raises(FileExistsError):
        move_no_clobber(source / "a.mp4", into / "a.mp4")
    assert (into / "a.mp4").read_text() == "older"
    assert (source / "a.mp4").read_text() == "new a.mp4"


def test_hard_links_are_used_where_they_work(tmp_path, monkeypatch, log_lines):
    used = []
    monkeypatch.setattr(os, "link", lambda s, t: used.append(t) or real_link(s, t))
    source, into = files(tmp_path, "a.mp4")
    move_no_clobber(source / "a.mp4", into / "a.mp4")
    assert used == [into / "a.mp4"]
    assert data_layout._methods == {} and log_lines == []


def test_the_method_is_found_once_per_device_and_logged_once(tmp_path, no_rename_flags, calls, log_lines):
    source, into = files(tmp_path, "a.mp4", "b.mp4", "c.mp4")
    (into / "b.mp4").write_text("older")
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        try:
            move_no_clobber(source / name, into / name)
        except FileExistsError:
            pass
    assert calls == {"link": 1, "renameat2": 1}
    assert data_layout._methods == {os.stat(into).st_dev: MoveMethod.CHECKED_RENAME}
    assert sorted(p.name for p in into.iterdir()) == ["a.mp4", "b.mp4", "c.mp4"]
    assert (into / "b.mp4").read_text() == "older"
    assert log_lines == [(f"WARNING the file system of {into} refuses link+unlink: EPERM, "
                          "renameat2(RENAME_NOREPLACE): EINVAL; moves there use rename after an existence check\n")]


def test_a_taken_name_on_an_unknown_file_system_decides_nothing(tmp_path, no_links, calls):
    source, into = files(tmp_path, "a.mp4")
    (into / "a.mp4").write_text("older")
    with pytest.raises(FileExistsError):
        move_no_clobber(source / "a.mp4", into / "a.mp4")
    assert data_layout._methods == {}
    move_no_clobber(source / "a.mp4", into / "b.mp4")
    assert data_layout._methods == {os.stat(into).st_dev: MoveMethod.RENAME_NOREPLACE}


def test_another_device_keeps_its_own_method(tmp_path, monkeypatch):
    source, into = files(tmp_path, "a.mp4")
    data_layout._methods[os.stat(into).st_dev + 1] = MoveMethod.CHECKED_RENAME
    monkeypatch.setitem(data_layout.MOVES, MoveMethod.CHECKED_RENAME, None)
    move_no_clobber(source / "a.mp4", into / "a.mp4")
    assert (into / "a.mp4").exists()


def test_a_c_library_without_renameat2_falls_back_to_the_checked_rename(tmp_path, no_links, monkeypatch):
    monkeypatch.setattr(data_layout, "_renameat2", None)
    source, into = files(tmp_path, "a.mp4")
    move_no_clobber(source / "a.mp4", into / "a.mp4")
    assert data_layout._methods == {os.stat(into).st_dev: MoveMethod.CHECKED_RENAME}


def test_real_errors_are_raised_not_worked_around(tmp_path, monkeypatch):
    def link(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")
    monkeypatch.setattr(os, "link", link)
    source, into = files(tmp_path, "a.mp4")
    with pytest.raises(OSError) as raised:
        move_no_clobber(source / "a.mp4", into / "a.mp4")
    assert raised.value.errno == errno.EXDEV
    assert (source / "a.mp4").exists() and data_layout._methods == {}


@pytest.mark.parametrize("method, error, expected", [
    (MoveMethod.LINK, errno.EPERM, MoveMethod.RENAME_NOREPLACE),
    (MoveMethod.LINK, errno.EOPNOTSUPP, MoveMethod.RENAME_NOREPLACE),
    (MoveMethod.LINK, errno.ENOSYS, MoveMethod.RENAME_NOREPLACE),
    (MoveMethod.LINK, errno.EMLINK, MoveMethod.RENAME_NOREPLACE),
    (MoveMethod.LINK, errno.EACCES, None),
    (MoveMethod.LINK, errno.ENOSPC, None),
    (MoveMethod.RENAME_NOREPLACE, errno.EINVAL, MoveMethod.CHECKED_RENAME),
    (MoveMethod.RENAME_NOREPLACE, errno.ENOSYS, MoveMethod.CHECKED_RENAME),
    (MoveMethod.RENAME_NOREPLACE, errno.EOPNOTSUPP, MoveMethod.CHECKED_RENAME),
    (MoveMethod.RENAME_NOREPLACE, errno.EXDEV, None),
    (MoveMethod.CHECKED_RENAME, errno.EINVAL, None),
])
def test_which_errors_mean_the_file_system_cannot(method, error, expected):
    assert fallback(method, error) is expected


def test_hand_off_still_picks_a_free_name(tmp_path, mode):
    layout = DataLayout(tmp_path)
    layout.prepare()
    name = "camera_1_2026-01-01_00-00-00.mp4"
    (layout.completed / name).write_bytes(b"older")
    result = hand_off(put(layout, name), layout)
    assert result.outcome == Outcome.COMPLETED and result.target.name == "camera_1_2026-01-01_00-00-00_1.mp4"
    assert (layout.completed / name).read_bytes() == b"older"
    assert result.target.read_bytes() == SEGMENT


def test_a_source_that_cannot_be_removed_is_an_error_and_leaves_no_second_name(tmp_path, monkeypatch):
    """The unlink after the link fails (a sticky folder, chattr): not a file system without links."""
    import errno as errors

    from services.common import data_layout
    monkeypatch.setattr(data_layout, "_methods", {})
    (tmp_path / "into").mkdir()
    source = tmp_path / "a.mp4"
    source.write_text("segment")
    real_unlink = data_layout.os.unlink

    def refuse_source(path, *args, **kwargs):
        if str(path) == str(source):
            raise PermissionError(errors.EPERM, "Operation not permitted", str(path))
        return real_unlink(path, *args, **kwargs)
    monkeypatch.setattr(data_layout.os, "unlink", refuse_source)
    with pytest.raises(OSError) as raised:
        data_layout.move_no_clobber(source, tmp_path / "into" / "a.mp4")
    assert raised.value.errno == errors.EPERM and not isinstance(raised.value, FileExistsError)
    assert source.read_text() == "segment" and list((tmp_path / "into").iterdir()) == []
    assert data_layout._methods == {}
