"""The daphne adapter: everything of the gateway that relies on other libraries' internals.

- `daphne.py`: daphne's WebSocket protocol and server made lighter per socket, and a deadline
  for HTTP request headers;
- `transport.py`: the `frames.FrameWriter` that writes frames straight to a daphne socket;
- `layers.py`: channels-redis' layer sending group messages in batches;
- `prometheus.py`: many equal histogram observations in one step;
- `checks.py`: the names and versions all of it relies on, checked by `manage.py check`.

Nothing here takes effect on import. `python -m realtime.server` (daphne's command line, see
`__main__.py`) calls `install()` before daphne starts; a process that serves the project
otherwise (`manage.py runserver`, plain `daphne`, another ASGI server) runs the libraries as
they are, and the fan-out sends through ASGI (docs/server-adapter.md).
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger("realtime.server")


def install() -> list[str]:
    """Have daphne run `LeanServer` with `LeanWebSocketProtocol` connections and the socket writer.

    Collects garbage less often too. Returns the adapter's problems (`checks.adapter_errors`),
    which are also logged: a part whose names are missing is left out.
    """
    from daphne import cli, server, ws_protocol

    from . import checks, daphne, transport

    problems = [error.msg for error in checks.adapter_errors()]
    for problem in problems:
        logger.error("%s", problem)
    if checks.part_usable("protocol"):
        if ws_protocol.WebSocketFactory.protocol is ws_protocol.WebSocketProtocol:
            ws_protocol.WebSocketFactory.protocol = daphne.LeanWebSocketProtocol
    else:
        checks.log_fallback(
            "protocol", "daphne's own WebSocket protocol serves; SIGTERM stops the process without the drain"
        )
    if checks.part_usable("server"):
        if cli.CommandLineInterface.server_class is server.Server:
            cli.CommandLineInterface.server_class = daphne.LeanServer
    else:
        checks.log_fallback(
            "server", "daphne's own server serves, without the request header deadline or the drain on SIGTERM"
        )
    transport.installed = True
    gc.set_threshold(*daphne.GC_THRESHOLDS)
    return problems
