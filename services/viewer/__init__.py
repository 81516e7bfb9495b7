"""The footage viewer: a read-only web page of each camera's day, played from local copies or the bucket."""
