import struct

import pytest

from services.common.data_layout import DataLayout
from services.recorder.handoff import Outcome, hand_off, sweep_run_dir


def box(kind: bytes, payload: int) -> bytes:
    return struct.pack(">I4s", 8 + payload, kind) + b"\x01" * payload


SEGMENT = box(b"ftyp", 16) + box(b"moov", 64) + box(b"moof", 32) + box(b"mdat", 400)


@pytest.fixture
def layout(tmp_path):
    layout = DataLayout(tmp_path)
    layout.prepare()
    return layout


def put(layout, name, data=SEGMENT):
    run = layout.recordings / "camera_1" / "run-x"
    run.mkdir(parents=True, exist_ok=True)
    (run / name).write_bytes(data)
    return run / name


def test_whole_segment_moves_to_completed(layout):
    result = hand_off(put(layout, "camera_1_2026-01-01_00-00-00.mp4"), layout)
    assert result.outcome == Outcome.COMPLETED
    assert (layout.completed / "camera_1_2026-01-01_00-00-00.mp4").read_bytes() == SEGMENT


def test_existing_name_is_never_overwritten(layout):
    (layout.completed / "camera_1_2026-01-01_00-00-00.mp4").write_bytes(b"older")
    (layout.uploaded / "camera_1_2026-01-01_00-00-00_1.mp4").write_bytes(b"older still")
    result = hand_off(put(layout, "camera_1_2026-01-01_00-00-00.mp4"), layout)
    assert result.target.name == "camera_1_2026-01-01_00-00-00_2.mp4"
    assert (layout.completed / "camera_1_2026-01-01_00-00-00.mp4").read_bytes() == b"older"
    assert (layout.uploaded / "camera_1_2026-01-01_00-00-00_1.mp4").read_bytes() == b"older still"


def test_torn_segment_is_trimmed_before_handoff(layout):
    result = hand_off(put(layout, "camera_1_2026-01-01_00-00-00.mp4", SEGMENT + box(b"moof", 32)[:20]), layout)
    assert result.outcome == Outcome.COMPLETED and result.target.read_bytes() == SEGMENT


def test_ftyp_stub_is_discarded(layout):
    path = put(layout, "camera_1_2026-01-01_00-00-00.mp4", box(b"ftyp", 20))
    assert hand_off(path, layout).outcome == Outcome.DISCARDED
    assert not path.exists() and not list(layout.completed.iterdir())


def test_large_unreadable_file_is_kept_aside(layout):
    path = put(layout, "camera_1_2026-01-01_00-00-00.mp4", b"garbage" * 200_000)
    result = hand_off(path, layout)
    assert result.outcome == Outcome.REJECTED and result.target.exists()
    assert not list(layout.completed.iterdir())


def test_unknown_file_is_skipped(layout):
    path = put(layout, "notes.txt", b"hello")
    assert hand_off(path, layout).outcome == Outcome.SKIPPED and path.exists()


def test_sweep_hands_off_and_removes_run_dir(layout):
    path = put(layout, "camera_1_2026-01-01_00-00-00.mp4")
    (path.parent / "segments.csv").write_text("camera_1_2026-01-01_00-00-00.mp4,0,2\n")
    results = sweep_run_dir(path.parent, layout)
    assert [r.outcome for r in results] == [Outcome.COMPLETED]
    assert not path.parent.exists()


def test_sweep_leaves_unknown_files(layout):
    path = put(layout, "camera_1_2026-01-01_00-00-00.mp4")
    (path.parent / "keep.me").write_text("x")
    sweep_run_dir(path.parent, layout)
    assert (path.parent / "keep.me").exists()
