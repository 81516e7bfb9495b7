"""rclone crypt: keys, the file format, and the encrypting reader used for uploads."""
