"""What every layer of a gateway process shares: the connection table, metrics, logs and the
per-event-loop singletons.

Below `delivery`, `bus` and `connection` because all three read or count through it (the fan-out
counts frames in the connection table, presence and admission count its sockets); above `server`,
whose Prometheus adapter `metrics` uses.
"""
