"""Delivery: how an event gets from a publisher to the sockets of every gateway process.

`dispatch` (publishing: groups, audiences, on-commit sends, the publisher's batches and outage
hold), `fanout` (one channel-layer membership per group for all local sockets, and each socket's
outbox), `history` (numbering and replay of broadcast events). Builds on `wire`.
"""
