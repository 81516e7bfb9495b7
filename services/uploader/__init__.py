"""The uploader wing: one job per finished segment, the scheduler, housekeeping with the retention
decisions, and the daemon's report. Never imports the recorder wing."""
