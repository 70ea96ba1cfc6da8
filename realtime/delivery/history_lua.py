"""The Lua scripts of the Redis history (`history.RedisHistory`): numbering and storing an event
atomically, storing an event heard by every process once, and reading a stream's position.

Each script starts by settling the stream's epoch (`epoch_lua`), so every writer and reader agrees
on the life of a stream before it touches the counter or the stream.
"""

from __future__ import annotations


def epoch_lua(fresh: str, renew: str = "'0'", *, primary: bool = False) -> str:
    """Lua: the stream's epoch; when Redis has none (new, or its data was lost) or `renew` is '1'
    (events of the type went out unnumbered), start a new life under the epoch in `fresh`,
    dropping the counter and stream of the old one. KEYS: seq, epoch, stream.

    With `primary` (Redis behind Sentinel), KEYS[4] holds the replication id of the primary that
    wrote the stream last, and a stream written by another primary starts a new life too: a
    promoted replica may lack the old primary's last writes (replication is asynchronous) while
    it kept the epoch, and would otherwise hand out those numbers again in the same epoch, a gap
    no client could see. A promotion always gives the new primary a new replication id.
    """
    if not primary:
        return f"""
local epoch = redis.call('GET', KEYS[2])
if (not epoch) or {renew} == '1' then
  epoch = {fresh}
  redis.call('SET', KEYS[2], epoch)
  redis.call('DEL', KEYS[1], KEYS[3])
end
"""
    return f"""
local epoch = redis.call('GET', KEYS[2])
local primary = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
local wrote = redis.call('GET', KEYS[4])
if (not epoch) or {renew} == '1' or (wrote and wrote ~= primary) then
  epoch = {fresh}
  redis.call('SET', KEYS[2], epoch)
  redis.call('DEL', KEYS[1], KEYS[3])
end
if wrote ~= primary then redis.call('SET', KEYS[4], primary) end
"""


def history_scripts(*, primary: bool) -> tuple[str, str, str]:
    """Return the Lua of (append, append once, position); `primary` as for `epoch_lua`."""
    # Numbers and stores one event atomically. KEYS: seq, epoch, stream (, primary).
    # ARGV: frame without its closing brace, audience JSON, max events, fresh epoch, now in ms,
    # '1' to start a new epoch first.
    store = (
        epoch_lua("ARGV[4]", "ARGV[6]", primary=primary)
        + """local seq = redis.call('INCR', KEYS[1])
local text = ARGV[1] .. ',"seq":' .. seq .. ',"epoch":"' .. epoch .. '"}'
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], seq .. '-1', 't', text, 'a', ARGV[2], 'ms', ARGV[5])
"""
    )
    append = store + "return {seq, epoch, text, 1}\n"
    # As append, once per key: the last key remembers "seq epoch" of the event stored under it for
    # ARGV[7] seconds; asked again in the same epoch, return that event's numbers and stored frame
    # ('' when the stream has trimmed it already) and 0 (not appended) instead of appending it a
    # second time.
    once = "KEYS[5]" if primary else "KEYS[4]"
    append_once = (
        f"""
local known = redis.call('GET', {once})
if known then
  local known_seq, known_epoch = string.match(known, '^(%d+) (.+)$')
  if known_epoch == redis.call('GET', KEYS[2]) then
    local rows = redis.call('XRANGE', KEYS[3], known_seq .. '-1', known_seq .. '-1')
    local stored = ''
    if rows[1] then stored = rows[1][2][2] end
    return {{tonumber(known_seq), known_epoch, stored, 0}}
  end
end
"""
        + store
        + f"""
redis.call('SET', {once}, seq .. ' ' .. epoch, 'EX', ARGV[7])
return {{seq, epoch, text, 1}}
"""
    )
    position = (
        epoch_lua("ARGV[1]", primary=primary)
        + """local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
return {seq, epoch}
"""
    )
    return append, append_once, position
