"""Camera recorder and S3 uploader daemons."""
