"""The channel layer of a gateway on Redis: channels-redis' core layer, sending groups in batches.

channels-redis sends to a group in up to four round trips to Redis: drop the group's expired
members, read its members, drop each member channel's expired messages, then add the message to
each channel by a script it sends in full every time. A filled order publishes five events, most
to groups no process listens to, so a command spent more of its loop time waiting on Redis than
on anything else.

`RedisChannelLayer.group_send_many` sends a list of (group, message) in order with at most two
round trips per Redis host: one pipeline reads the members of every group (dropping expired
ones), and one script run per host adds each message to each member channel, dropping that
channel's expired messages and respecting its capacity, as channels-redis does. Messages get
increasing scores in the order given, so a channel receives them in that order. `group_send` is
the batch of one. Everything else (receiving, groups, capacity, sharding over several hosts) is
channels-redis' own. Where a channels-redis name it uses is missing (`checks.py`), each group is
sent by channels-redis' own `group_send` instead, and the log says so once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from channels_redis.core import RedisChannelLayer as CoreRedisChannelLayer

from .checks import log_fallback, part_usable

logger = logging.getLogger(__name__)

# KEYS: channel keys. ARGV: one serialized message per key, then one capacity per key, then one
# score (send time) per key, then the message expiry in seconds. Returns how many were refused.
_ADD_TO_CHANNELS = """
local count = #KEYS
local expiry = tonumber(ARGV[3 * count + 1])
local refused = 0
for i = 1, count do
  local at = tonumber(ARGV[2 * count + i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, at - expiry)
  if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[count + i]) then
    redis.call('ZADD', KEYS[i], at, ARGV[i])
    redis.call('EXPIRE', KEYS[i], expiry)
  else
    refused = refused + 1
  end
end
return refused
"""

SCORE_STEP = 1e-6  # seconds between the scores of messages sent together, to keep their order


class RedisChannelLayer(CoreRedisChannelLayer):
    _add_to_channels: Any = None  # the script, registered on first use (EVALSHA, loaded again if Redis lost it)

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        """Add `channel` to every group, in one pipeline per Redis host (as `group_add` each)."""
        if not part_usable("layer"):
            log_fallback("layer", "names it needs are missing, see manage.py check")
            for group in groups:
                await super().group_add(group, channel)
            return
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        by_host: dict[int, list[str]] = {}
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
            by_host.setdefault(self.consistent_hash(group), []).append(group)
        now = time.time()
        for host, members in by_host.items():
            async with self.connection(host).pipeline(transaction=False) as pipe:
                for group in members:
                    key = self._group_key(group)
                    pipe.zadd(key, {channel: now})
                    pipe.expire(key, self.group_expiry)
                await pipe.execute()

    async def group_discard_many(self, groups: list[str], channel: str) -> None:
        """Take `channel` out of every group, in one pipeline per Redis host (as `group_discard` each)."""
        if not part_usable("layer"):
            log_fallback("layer", "names it needs are missing, see manage.py check")
            for group in groups:
                await super().group_discard(group, channel)
            return
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        by_host: dict[int, list[str]] = {}
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
            by_host.setdefault(self.consistent_hash(group), []).append(group)
        for host, members in by_host.items():
            async with self.connection(host).pipeline(transaction=False) as pipe:
                for group in members:
                    pipe.zrem(self._group_key(group), channel)
                await pipe.execute()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self.group_send_many([(group, message)])

    async def group_send_many(self, sends: list[tuple[str, dict[str, Any]]]) -> None:
        """Send each message to its group, in the order given, in at most two round trips per host."""
        if not part_usable("layer"):
            log_fallback("layer", "names it needs are missing, see manage.py check")
            for group, message in sends:
                await super().group_send(group, message)
            return
        by_host: dict[int, list[int]] = {}
        for position, (group, _) in enumerate(sends):
            assert self.require_valid_group_name(group), "Group name not valid"
            by_host.setdefault(self.consistent_hash(group), []).append(position)
        now = time.time()
        members: list[list[str]] = [[] for _ in sends]
        for host, positions in by_host.items():
            async with self.connection(host).pipeline(transaction=False) as pipe:
                for position in positions:
                    key = self._group_key(sends[position][0])
                    pipe.zremrangebyscore(key, min=0, max=int(now) - self.group_expiry)
                    pipe.zrange(key, 0, -1)
                replies = await pipe.execute()
            for position, names in zip(positions, replies[1::2]):
                members[position] = [name.decode("utf8") for name in names]

        # Per channel host: (channel key, serialized message, capacity, score), in send order.
        additions: dict[int, list[tuple[str, bytes, int, float]]] = {}
        for position, ((_group, message), channels) in enumerate(zip(sends, members)):
            if not channels:
                continue
            keys_by_host, serialized, capacities = self._map_channel_keys_to_connection(channels, message)
            for host, keys in keys_by_host.items():
                for key in keys:
                    additions.setdefault(host, []).append(
                        (key, serialized[key], capacities[key], now + position * SCORE_STEP)
                    )
        for host, entries in additions.items():
            connection = self.connection(host)
            if self._add_to_channels is None:
                self._add_to_channels = connection.register_script(_ADD_TO_CHANNELS)
            refused = await self._add_to_channels(
                keys=[key for key, _, _, _ in entries],
                args=[
                    *[body for _, body, _, _ in entries],
                    *[capacity for _, _, capacity, _ in entries],
                    *[at for _, _, _, at in entries],
                    self.expiry,
                ],
                client=connection,
            )
            if refused:
                logger.info("%d of %d channel messages refused: channels over capacity", refused, len(entries))
