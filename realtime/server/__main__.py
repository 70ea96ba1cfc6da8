"""The gateway's server: `python -m realtime.server [daphne options] aktienanalyse.asgi:application`.

Daphne's own command line (same options), with the adapter of this package installed first.
"""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aktienanalyse.settings")

import django  # noqa: E402

django.setup()

from daphne.cli import CommandLineInterface  # noqa: E402

from realtime.server import install  # noqa: E402

if __name__ == "__main__":
    install()
    sys.argv[0] = "python -m realtime.server"
    CommandLineInterface.entrypoint()
