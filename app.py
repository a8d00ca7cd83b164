"""wgan_app entry point: `python app.py` starts the web UI; --train / --sample / --eval /
--push-to-hub run headless. Importing this module does nothing heavy. (Installed, the same
command is `wgan-app`.)"""

import sys

from wgan_app.cli import console

if __name__ == "__main__":
    sys.exit(console())
