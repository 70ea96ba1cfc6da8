"""One client connection, from the handshake to the close: what the consumer delegates to.

`gate` (the handshake: origin, session or token, client id), `access` (who may stay connected, and
what they may see), `limits` (rate and replay budgets), `subscriptions` (event types, symbols,
replay, the per-socket delivery filter), `commands` (the registry apps add commands to),
`command_runner` (run, answer, forward, report failures), `activity` (the user's activity
events), `drain` (closing every socket on SIGTERM). The top layer: builds on `bus`, `delivery`,
`runtime` and `wire`.
"""
