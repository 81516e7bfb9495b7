"""The recorder wing: one supervised FFmpeg per camera, runs, and the hand-off to `completed/`.
Never imports the uploader wing."""
