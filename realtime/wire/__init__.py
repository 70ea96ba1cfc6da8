"""The wire: what a frame is, byte for byte, and nothing else of the gateway.

`protocol` (envelope, exact-decimal JSON, client message parsing, error and close codes), `events`
(the event schemas), `payload` (command argument readers), `frames` (WebSocket frame bytes).
Imports nothing of `realtime`; every other layer builds on it (.importlinter).
"""
