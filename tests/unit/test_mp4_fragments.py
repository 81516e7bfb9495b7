import struct

from services.common.mp4_fragments import inspect_file, trim_torn_tail


def box(kind: bytes, payload_len: int = 8) -> bytes:
    return struct.pack(">I4s", 8 + payload_len, kind) + b"\0" * payload_len


def large_box(kind: bytes, payload_len: int) -> bytes:
    return struct.pack(">I4sQ", 1, kind, 16 + payload_len) + b"\0" * payload_len


HEAD = box(b"ftyp", 16) + box(b"moov", 100)
FRAGMENT = box(b"moof", 40) + box(b"mdat", 500)


def write(tmp_path, data: bytes):
    path = tmp_path / "camera_1_2026-01-01_00-00-00.mp4"
    path.write_bytes(data)
    return path


def test_whole_file_is_untouched(tmp_path):
    data = HEAD + FRAGMENT * 3 + box(b"mfra", 20)
    result = trim_torn_tail(write(tmp_path, data))
    assert result.playable and not result.torn and result.fragments == 3
    assert (tmp_path / "camera_1_2026-01-01_00-00-00.mp4").stat().st_size == len(data)


def test_torn_mdat_is_trimmed_to_last_fragment(tmp_path):
    whole = HEAD + FRAGMENT * 2
    path = write(tmp_path, whole + FRAGMENT[:-100])
    result = trim_torn_tail(path)
    assert result.torn and result.fragments == 2
    assert path.read_bytes() == whole


def test_moof_without_mdat_is_trimmed(tmp_path):
    whole = HEAD + FRAGMENT
    path = write(tmp_path, whole + box(b"moof", 40))
    assert trim_torn_tail(path).playable_end == len(whole)
    assert path.stat().st_size == len(whole)


def test_cut_inside_box_header(tmp_path):
    whole = HEAD + FRAGMENT
    path = write(tmp_path, whole + b"\0\0\0")
    assert trim_torn_tail(path).playable_end == len(whole)


def test_header_only_stub_is_not_playable(tmp_path):
    assert not inspect_file(write(tmp_path, box(b"ftyp", 20))).playable
    assert not inspect_file(write(tmp_path, HEAD)).playable
    assert not inspect_file(write(tmp_path, b"")).playable
    assert not inspect_file(write(tmp_path, HEAD + FRAGMENT[:50])).playable


def test_not_mp4(tmp_path):
    result = inspect_file(write(tmp_path, b"hello world, this is text" * 10))
    assert not result.playable and "not an MP4" in result.problem


def test_classic_mp4_and_64bit_sizes(tmp_path):
    assert inspect_file(write(tmp_path, box(b"ftyp") + large_box(b"mdat", 300) + box(b"moov", 50))).playable
    result = inspect_file(write(tmp_path, HEAD + box(b"moof") + large_box(b"mdat", 300)))
    assert result.fragments == 1 and not result.torn


def test_invalid_box_size_stops_walk(tmp_path):
    path = write(tmp_path, HEAD + FRAGMENT + struct.pack(">I4s", 3, b"junk") + b"\0" * 40)
    result = trim_torn_tail(path)
    assert "invalid box size" in result.problem and path.stat().st_size == len(HEAD + FRAGMENT)


def test_duration_of_junk_is_none(tmp_path):
    from services.common.mp4_fragments import video_duration
    junk = struct.pack(">I4s", 24, b"ftyp") + b"\0" * 16 + struct.pack(">I4s", 20, b"moov") + struct.pack(">I4s", 1, b"trak") + b"\0" * 4
    assert video_duration(write(tmp_path, junk)) is None
    assert video_duration(write(tmp_path, b"\xff" * 100)) is None
    assert video_duration(tmp_path / "missing.mp4") is None
