"""The bare reference of `make bench`: a minimal `websockets` broadcast server of ours.

It speaks the subset of the protocol the benchmark uses (welcome, subscribe -> confirmed, events)
and gets each event, already encoded, from a Redis pub/sub channel; every event is broadcast to
the subscribed sockets with one `websockets.broadcast` call. No authentication, no history, no
per-connection queue: the floor a Python gateway can reach on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

import redis.asyncio as redis
from websockets.asyncio.server import broadcast, serve

subscribers: set = set()


async def handler(ws) -> None:
    client_id = str(uuid.uuid4())
    await ws.send(json.dumps({"type": "system", "event": "connection.established", "data": {"client_id": client_id}}))
    try:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "subscription" and message.get("event") == "subscribe":
                for event_type in message.get("data", {}).get("event_types", []):
                    await ws.send(
                        json.dumps(
                            {
                                "type": "system",
                                "event": "subscription.confirmed",
                                "data": {"event_type": event_type, "client_id": client_id},
                                "correlation_id": message.get("correlation_id"),
                            }
                        )
                    )
                subscribers.add(ws)
    finally:
        subscribers.discard(ws)


async def relay(url: str, channel: str) -> None:
    client = redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    async for item in pubsub.listen():
        if item["type"] == "message":
            broadcast(subscribers, item["data"].decode())


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--channel", required=True)
    args = parser.parse_args()
    async with serve(handler, "127.0.0.1", args.port, ping_interval=35, ping_timeout=30, max_size=64 * 1024):
        await relay(args.redis, args.channel)


if __name__ == "__main__":
    asyncio.run(main())
