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


def test_a_failing_handoff_is_retried_with_backoff_and_reported_until_it_succeeds(layout, monkeypatch):
    from services.recorder import handoff as module
    from services.recorder.handoff import HandoffWorker, retry_delay
    from tests.support.processes import wait_for

    real, failures = module.hand_off, []

    def flaky(path, layout, first_frame=None):   # the first two tries fail, as a read-only remount would
        if len(failures) < 2:
            failures.append(path)
            raise OSError(30, "Read-only file system")
        return real(path, layout)
    monkeypatch.setattr(module, "hand_off", flaky)
    done = []
    worker = HandoffWorker(layout, done.append)
    path = put(layout, "camera_1_2026-01-24_14-30-00.mp4")
    worker.start()
    worker.segment_closed(path)

    def reported():
        held = worker.waiting().get(1)
        return held if held and held.error else None
    waiting = wait_for(reported, 5, "the failure reported")
    assert waiting.items == 1 and "Read-only file system" in waiting.error
    wait_for(lambda: done, 10, "the hand-off after the failures")
    assert done[0].outcome is Outcome.COMPLETED and worker.waiting() == {} and len(failures) == 2
    worker.stop()
    assert [retry_delay(n, 60) for n in (1, 2, 3, 8, 9)] == [1, 2, 4, 60, 60]


def test_a_read_error_is_raised_for_the_worker_to_retry_not_passed_over(layout, monkeypatch):
    from services.recorder import handoff as module

    def eio(path):
        raise OSError(5, "Input/output error", str(path))
    monkeypatch.setattr(module, "trim_torn_tail", eio)
    path = put(layout, "camera_1_2026-01-24_14-30-00.mp4")
    with pytest.raises(OSError):
        hand_off(path, layout)
    assert path.exists()
