from services.commands.sync import progress_line


def test_sync_progress_line():
    assert progress_line(1, 4, 512, 2048, width=8) == "[##------] 1/4 files, 512 B of 2.0 KB"
    assert progress_line(0, 0, 0, 0, width=4) == "[####] 0/0 files, 0 B of 0 B"
