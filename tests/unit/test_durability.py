"""Syncing the open segments: which files, how often, what a slow or failing disk does."""
import os
import threading
from pathlib import Path

from loguru import logger

from services.recorder.durability import FsyncReport, SegmentSyncer, fsync_path, percentiles, recent


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Run:
    def __init__(self, run_dir: Path, segment: str | None):
        self.run_dir, self.segment = run_dir, segment

    def current_segment(self) -> str | None:
        return self.segment


def syncer(interval=2.0, fail: dict[str, OSError] | None = None):
    clock, synced = Clock(), []

    def sync(path: Path, directory: bool = False) -> None:
        if path.name in (fail or {}):
            raise fail[path.name]
        clock.now += 0.01
        synced.append((path.name, directory))

    return SegmentSyncer(interval, clock=clock, sync=sync), clock, synced


def test_percentiles_by_nearest_rank():
    assert percentiles([]) == (0.0, 0.0, 0.0)
    assert percentiles([3.0]) == (3.0, 3.0, 3.0)
    assert percentiles([float(v) for v in range(1, 101)]) == (50.0, 99.0, 100.0)


def test_recent_keeps_the_last_stretch():
    assert recent([(0.0, 1.0), (50.0, 2.0), (100.0, 3.0)], now=100.0, span=60.0) == [2.0, 3.0]


def test_a_round_syncs_each_current_segment_and_a_new_segments_directory(tmp_path):
    sync, _, synced = syncer()
    runs = [Run(tmp_path / "a", "seg1.mp4"), Run(tmp_path / "b", None)]
    assert sync.offer(runs)
    sync.run_round()
    assert synced == [("seg1.mp4", False), ("a", True)]
    synced.clear()
    sync._next_round = 0
    sync.offer(runs)
    sync.run_round()
    assert synced == [("seg1.mp4", False)], "the directory only once per segment"
    runs[0].segment = "seg2.mp4"
    sync._next_round = 0
    sync.offer(runs)
    sync.run_round()
    assert synced[-2:] == [("seg2.mp4", False), ("a", True)]


def test_rounds_come_every_interval_and_a_busy_round_is_skipped_not_queued(tmp_path):
    sync, clock, _ = syncer(interval=2.0)
    runs = [Run(tmp_path, "s.mp4")]
    assert sync.offer(runs)
    clock.now += 1.0
    assert sync.offer(runs), "not due yet: nothing to do"
    clock.now += 1.0
    assert not sync.offer(runs), "due, but the first round has not finished"
    sync.run_round()
    clock.now += 2.0
    assert sync.offer(runs)
    sync.run_round()
    report = sync.report()
    assert (report.rounds, report.skipped, report.files, report.errors) == (2, 1, 2, 0)
    assert report.file_max_ms > 0


def test_off_means_no_rounds_and_no_report(tmp_path):
    sync, _, synced = syncer(interval=0)
    sync.start()
    assert sync.offer([Run(tmp_path, "s.mp4")])
    assert synced == [] and sync.report() is None
    sync.stop()


def test_a_segment_gone_meanwhile_is_no_error_but_a_failing_disk_is_logged_once(tmp_path):
    fail = {"gone.mp4": FileNotFoundError(2, "No such file"), "bad.mp4": OSError(5, "Input/output error")}
    sync, clock, _ = syncer(fail=fail)
    runs = [Run(tmp_path, "gone.mp4"), Run(tmp_path / "x", "bad.mp4")]
    lines: list[str] = []
    sink = logger.add(lines.append, format="{level} {message}")
    try:
        for _ in range(2):
            clock.now += 2
            sync.offer(runs)
            sync.run_round()
        fail.clear()
        clock.now += 2
        sync.offer(runs)
        sync.run_round()
    finally:
        logger.remove(sink)
    assert (sync.report().errors, sync.report().files) == (2, 2)
    assert [line.split()[0] for line in lines] == ["ERROR", "INFO"]
    assert "Input/output error" in lines[0] and "gone.mp4" not in lines[0]


def test_the_worker_thread_runs_rounds_until_stopped(tmp_path):
    done = threading.Event()
    sync = SegmentSyncer(0.01, sync=lambda path, directory=False: done.set())
    (tmp_path / "s.mp4").write_bytes(b"x")
    sync.start()
    sync.offer([Run(tmp_path, "s.mp4")])
    assert done.wait(5)
    sync.stop()
    assert not sync._thread.is_alive()


def test_fsync_path_opens_read_only(tmp_path):
    target = tmp_path / "f.mp4"
    target.write_bytes(b"data")
    target.chmod(0o444)  # a read-only descriptor is enough (root could open it anyway)
    fsync_path(target)
    fsync_path(tmp_path, directory=True)
    assert os.stat(target).st_size == 4


def test_the_report_round_trips_through_the_state_file():
    from services.common.state_file import from_jsonable, to_jsonable
    report = FsyncReport(2.0, rounds=3, file_p99_ms=1.5)
    assert from_jsonable(FsyncReport, to_jsonable(report)) == report
