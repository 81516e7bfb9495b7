"""What both daemons and the commands share: settings, the folder layout and its no-clobber moves,
segment names, secret masking, logging, sd_notify, state files, alerts, metrics, MP4 box walking."""
