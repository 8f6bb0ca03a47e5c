import sys

from vae_audio.cli import main

sys.exit(main())
