"""The pure side of a reload: which cameras change, which settings wait for a restart."""
from services.common.config import EnvReader
from services.recorder.config import CameraConfig, read_recorder_config
from services.recorder.reload import diff_cameras, plan_reload
from services.uploader.config import read_uploader_config
from services.uploader.reload import plan_reload as plan_uploader_reload

FRONT = CameraConfig(1, "rtsp://h/front", "front")
BACK = CameraConfig(2, "rtsp://h/back", "back")
SIDE = CameraConfig(3, "rtsp://h/side", "side")


def test_cameras_added_removed_changed_and_unchanged():
    moved = CameraConfig(2, "rtsp://h/back2", "back")
    found = diff_cameras([FRONT, BACK], [FRONT, moved, SIDE])
    assert found.added == (SIDE,)
    assert found.removed == ()
    assert found.changed == (moved,)
    assert found.unchanged == (1,)


def test_a_removed_camera_and_a_name_or_audio_change():
    renamed = CameraConfig(1, FRONT.url, "porch")
    quiet = CameraConfig(2, BACK.url, "back", audio="none")
    found = diff_cameras([FRONT, BACK, SIDE], [renamed, quiet])
    assert found.removed == (3,) and found.added == ()
    assert found.changed == (renamed, quiet) and found.unchanged == ()


def test_nothing_changed_is_all_unchanged():
    found = diff_cameras([FRONT, BACK], [BACK, FRONT])
    assert found.unchanged == (2, 1) and not (found.added or found.removed or found.changed)
    assert found.summary() == "0 camera(s) added, 0 removed, 0 changed, 2 unchanged"


def test_restart_all_changes_every_kept_camera():
    found = diff_cameras([FRONT, BACK], [FRONT, SIDE], restart_all=True)
    assert found.changed == (FRONT,) and found.added == (SIDE,) and found.removed == (2,)


def recorder(tmp_path, **values):
    base = {"DATA_DIR": str(tmp_path / "data"), "CAMERA_1_URL": "rtsp://h/front", "CAMERA_2_URL": "rtsp://h/back"}
    return read_recorder_config(EnvReader({**base, **values}))


def test_plan_keeps_restart_only_settings_and_names_them(tmp_path):
    (tmp_path / "other").mkdir()
    old = recorder(tmp_path)
    new = recorder(tmp_path, DATA_DIR=str(tmp_path / "other"), RECORDER_METRICS_PORT="9101", LOG_LEVEL="debug",
                   RECORDER_BACKOFF_MAX="5", CAMERA_3_URL="rtsp://h/side")
    plan = plan_reload(old, new)
    assert set(plan.needs_restart) == {"DATA_DIR", "LOG_LEVEL", "RECORDER_METRICS_PORT"}
    assert plan.config.common.data_dir == old.common.data_dir and plan.config.metrics_port == 0
    assert plan.config.common.log_level == "INFO"
    assert plan.config.backoff_max == 5   # applies live
    assert [c.id for c in plan.config.cameras] == [1, 2, 3]
    assert plan.cameras.unchanged == (1, 2) and [c.id for c in plan.cameras.added] == [3]
    assert plan.command_changed == ()


def test_a_setting_in_every_command_line_changes_every_camera(tmp_path):
    plan = plan_reload(recorder(tmp_path), recorder(tmp_path, SEGMENT_DURATION="300"))
    assert plan.command_changed == ("SEGMENT_DURATION",)
    assert [c.id for c in plan.cameras.changed] == [1, 2] and plan.cameras.unchanged == ()
    assert plan.needs_restart == ()


def uploader(tmp_path, **values):
    base = {"DATA_DIR": str(tmp_path / "data"), "S3_BUCKET_NAME": "cams-bucket", "AWS_ACCESS_KEY_ID": "AKIAX",
            "AWS_SECRET_ACCESS_KEY": "reload-unit-test-secret"}
    return read_uploader_config(EnvReader({**base, **values}))


def test_uploader_local_settings_do_not_prepare_the_bucket_again(tmp_path):
    plan = plan_uploader_reload(uploader(tmp_path), uploader(tmp_path, UPLOAD_CONCURRENCY="2",
                                                              LOCAL_RETENTION_HOURS="48"))
    assert not plan.bucket_changed and plan.needs_restart == ()
    assert plan.config.concurrency == 2 and plan.config.retention_hours == 48


def test_uploader_new_bucket_or_prefix_prepares_again_and_metrics_wait(tmp_path):
    plan = plan_uploader_reload(uploader(tmp_path), uploader(tmp_path, S3_PREFIX="site-b/", UPLOADER_METRICS_PORT="9102"))
    assert plan.bucket_changed and plan.needs_restart == ("UPLOADER_METRICS_PORT",)
    assert plan.config.prefix == "site-b/" and plan.config.metrics_port == 0


def test_a_local_reload_keeps_the_store_its_guard_and_this_runs_uploads_in_flight(tmp_path):
    """What the start-up probe found (If-None-Match honoured) must outlive a reload of local
    settings, and a store made for a new bucket must not take this run's uploads for leftovers."""
    from services.bucket.store import ObjectStore
    from services.uploader import reload as module

    journal_file = tmp_path / "journal"
    journal_file.write_text("crashed-run-id site/old.mp4\n")
    config = uploader(tmp_path)
    store = ObjectStore.for_config(config, journal=journal_file)
    store.no_overwrite.enabled = True
    store.journal._started({"UploadId": "in-flight", "Key": "site/now.mp4"})
    store.journal.forget_leftovers({})

    class Fake:   # the Uploader's surface that _apply uses
        def __init__(self):
            self.config, self.store, self.in_flight = config, store, {}
            self.cleanup_done, self.cleanup_attempts, self.cleanup_due = True, 0, 0.0
            self.executor, self.webhook = None, None

        def make_job(self, config, store):
            return ("job", config, store)
    fake = Fake()
    module._apply(fake, module.plan_reload(config, uploader(tmp_path, LOCAL_RETENTION_HOURS="2")))
    assert fake.store is store and store.no_overwrite.enabled and fake.cleanup_done
    module._apply(fake, module.plan_reload(fake.config, uploader(tmp_path, S3_BUCKET_NAME="other-bucket")))
    assert fake.store is not store and not fake.cleanup_done
    assert fake.store.journal is store.journal and fake.store.journal.leftovers() == {}
    assert "in-flight site/now.mp4" in journal_file.read_text()
