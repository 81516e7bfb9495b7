"""Entry point kept for systemd units and scripts: `python -m services.s3_uploader`."""
import sys

from services.uploader.daemon import main

if __name__ == "__main__":
    sys.exit(main())
