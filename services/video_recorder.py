"""Entry point kept for systemd units and scripts: `python -m services.video_recorder`."""
import sys

from services.recorder.daemon import main

if __name__ == "__main__":
    sys.exit(main())
