"""The Redis bus between the gateway processes and the other services.

`redis` (the bus settings and client), `bridge` (bus messages in, commands forwarded out),
`presence` (which clients are online in which process), `admission` (the per-user connection cap
across processes). Builds on `delivery` and `wire`.
"""
