"""Helpers every part of the project shares and none owns: times, domain errors, the actor, exact
numbers, the permission answer.

Not a Django app and not the wire format: `realtime/` and the apps (market, trading, portfolio)
both import from here, and `core` imports neither, so nothing here can pull a layer in above it.
"""
