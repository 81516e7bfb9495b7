from pathlib import Path

from services.uploader.retention import LocalFile, disk_guard, expired

HOUR = 3600.0
NOW = 1_000_000.0


def files(folder, *ages_and_sizes):
    return [LocalFile(Path(folder) / f"f{i}.mp4", NOW - age * HOUR, size)
            for i, (age, size) in enumerate(ages_and_sizes)]


def names(selection):
    return [f.path.name for f in selection]


def test_only_files_older_than_retention_expire_oldest_first():
    uploaded = files("uploaded", (1, 10), (30, 10), (24.5, 10), (23.9, 10))
    assert names(expired(uploaded, NOW, 24)) == ["f1.mp4", "f2.mp4"]


def test_zero_retention_deletes_everything_uploaded():
    assert len(expired(files("uploaded", (0.01, 1), (5, 1)), NOW, 0)) == 2


def test_disk_guard_does_nothing_with_enough_space():
    plan = disk_guard(free_bytes=100, min_free_bytes=100, uploaded=files("uploaded", (1, 10)))
    assert plan.delete == [] and plan.shortfall == 0


def test_disk_guard_deletes_oldest_uploaded_until_enough():
    uploaded = files("uploaded", (1, 30), (3, 30), (2, 30))
    plan = disk_guard(free_bytes=50, min_free_bytes=100, uploaded=uploaded)
    assert names(plan.delete) == ["f1.mp4", "f2.mp4"]  # 3 h then 2 h old: 50 + 60 >= 100
    assert plan.shortfall == 0


def test_disk_guard_never_touches_unuploaded_unless_opted_in():
    uploaded = files("uploaded", (1, 10))
    waiting = files("completed", (5, 100))
    plan = disk_guard(0, 100, uploaded, waiting, allow_unuploaded=False)
    assert names(plan.delete) == ["f0.mp4"] and plan.delete[0].path.parent.name == "uploaded"
    assert plan.shortfall == 90


def test_disk_guard_opt_in_takes_uploaded_first_then_oldest_unuploaded():
    uploaded = files("uploaded", (1, 10))
    waiting = [LocalFile(Path("completed/new.mp4"), NOW - 1, 50), LocalFile(Path("completed/old.mp4"), NOW - 9, 50)]
    plan = disk_guard(0, 40, uploaded, waiting, allow_unuploaded=True)
    assert [str(f.path) for f in plan.delete] == ["uploaded/f0.mp4", "completed/old.mp4"]
    assert plan.shortfall == 0
