"""The gateway's server: `python -m realtime.server [daphne options] aktienanalyse.asgi:application`.

Daphne's own command line (same options), with the adapter of this package installed first.
"""

import logging
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
    # The server has stopped (after the drain, realtime/connection/drain.py). A worker thread still inside a
    # database call, such as a command the drain's deadline cut off, would hold the interpreter's
    # exit for as long as that call takes; the process ends now instead, and the database rolls
    # back such a thread's transaction when its connection drops.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
