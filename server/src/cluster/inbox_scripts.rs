//! The Lua side of the inbox in Redis (docs/PROTOCOL.md §7, docs/CLUSTER.md "The inbox in
//! Redis"): appending is part of the push's one script, reading is part of the bind's.
//!
//! Keys (`P` = `cluster.key_prefix`):
//! - `P ibx:epoch`: the cluster's inbox epoch (16 hex digits; set by the first script that
//!   needs it from the epoch the node proposes, so a Redis that lost it starts a new one);
//! - `P ibx:u:<uid>` (hash: `n` = last offset, `d` = delivered through; expires after
//!   `inbox.idle_ttl` without a push) and `P ibx:u:<uid>:m` (list of `"<at ms> <payload>"`,
//!   oldest first, at most `inbox.max_per_uid`, expires `inbox.ttl` after the last push);
//! - `P ibx:all`, `P ibx:all:m`: the broadcast stream, the same way.
//!
//! Offsets are consecutive within a stream: every `HINCRBY n` has exactly one `RPUSH` in the
//! same script, so the list holds offsets `n - LLEN + 1 ..= n`. A stream created (or
//! forgotten and created again) starts at Redis's clock in ms × 1000: above every offset an
//! earlier life of it gave out (that would take 1,000 pushes a millisecond, for its whole
//! life and its idle time), so an old position is a gap, never a wrong replay. Offsets stay
//! below 2^53 (exact in JavaScript) until the year 2255; they travel as strings in the JSON
//! envelopes (cjson would print them with 14 digits).

/// Helpers appended to the routing ones: `now_ms()`, `ibx_spec(argv)`, `ibx_epoch(ib)`,
/// `ibx_append(ib, stream, data, now, delivered)`, `ibx_read(...)`, `ibx_push(...)`.
pub(super) const HELPERS: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n) return string.format('%d', n) end
-- "max_per_uid ttl_ms idle_ttl_ms epoch" from the node's [inbox]; nil when it is off.
local function ibx_spec(s)
  local max, ttl, idle, ep = string.match(s or '', '^(%d+) (%d+) (%d+) (%x+)$')
  if not max then return nil end
  return {max = tonumber(max), ttl = tonumber(ttl), idle = tonumber(idle), ep = ep}
end
local function ibx_epoch(ib)
  local key = P .. 'ibx:epoch'
  local e = redis.call('GET', key)
  if not e then
    redis.call('SET', key, ib.ep)
    e = ib.ep
  end
  return e
end
local ibx_trimmed = 0
-- Appends to stream `name`; `delivered`: a connection is there to take it (not queued).
local function ibx_append(ib, name, data, now, delivered)
  local h, m = P .. 'ibx:' .. name, P .. 'ibx:' .. name .. ':m'
  local n = redis.call('HINCRBY', h, 'n', 1)
  if n == 1 then
    redis.call('DEL', m)
    n = now * 1000 + 1
    redis.call('HSET', h, 'n', int(n), 'd', int(n - 1))
  end
  if delivered then redis.call('HSET', h, 'd', int(n)) end
  redis.call('PEXPIRE', h, ib.idle)
  if redis.call('RPUSH', m, int(now) .. ' ' .. data) > ib.max then
    redis.call('LTRIM', m, -ib.max, -1)
    ibx_trimmed = ibx_trimmed + 1
  end
  redis.call('PEXPIRE', m, ib.ttl)
  return n
end
-- Where a connection starts in stream `name`: `mode` is 'live', 'pending' (the queue),
-- 'after' (`since`) or 'epoch' (a position from another epoch). Returns
-- {last offset, gap reason or '', offset, payload, ...}. Reading a queue (`queue`) hands
-- it over: everything up to the end counts as delivered.
local function ibx_read(ib, name, mode, since, now, queue)
  local h, m = P .. 'ibx:' .. name, P .. 'ibx:' .. name .. ':m'
  local n = redis.call('HGET', h, 'n')
  local last
  if n then
    last = tonumber(n)
  else
    last = now * 1000
    redis.call('HSET', h, 'n', int(last), 'd', int(last))
    redis.call('PEXPIRE', h, ib.idle)
  end
  if mode == 'live' then return {last, ''} end
  local function handed(out)
    if queue then redis.call('HSET', h, 'd', int(last)) end
    return out
  end
  if mode == 'epoch' then return handed({last, 'epoch'}) end
  if mode == 'after' and since > last then return handed({last, 'ahead'}) end
  local first = last - redis.call('LLEN', m) + 1
  local from = since + 1
  if mode == 'pending' then
    from = math.max(tonumber(redis.call('HGET', h, 'd') or last) + 1, first)
  elseif from < first then
    return handed({last, 'evicted'})
  end
  local out = {last, ''}
  if from <= last then
    local cut = now - ib.ttl
    for i, e in ipairs(redis.call('LRANGE', m, from - first, -1)) do
      local sp = string.find(e, ' ', 1, true)
      if tonumber(string.sub(e, 1, sp - 1)) >= cut then
        out[#out + 1] = from + i - 1
        out[#out + 1] = string.sub(e, sp + 1)
      elseif mode == 'after' then
        return handed({last, 'evicted'})
      end
    end
  end
  return handed(out)
end
-- Appends `data` to each uid's stream and publishes it, with each uid's offset, to every
-- live node holding one (the origin too: every node's frames come in Redis's order).
local function ibx_push(ib, uids, data, origin, req)
  local now, e = now_ms(), ibx_epoch(ib)
  local per, order, offline, online = route(uids, nil)
  local away, offs = {}, {}
  for _, u in ipairs(offline) do away[u] = true end
  for _, u in ipairs(uids) do offs[u] = int(ibx_append(ib, 'u:' .. u, data, now, not away[u])) end
  if req == '' then req = nil end
  for _, node in ipairs(order) do
    local ns = {}
    for i, u in ipairs(per[node]) do ns[i] = offs[u] end
    redis.call('PUBLISH', P .. 'inbox:' .. node,
      cjson.encode({k = 'uids', u = per[node], n = ns, e = e, d = data, o = origin, r = req}))
  end
  return online, offline, order
end
local function distinct(list)
  local seen, out = {}, {}
  for _, u in ipairs(list) do
    if not seen[u] then
      seen[u] = true
      out[#out + 1] = u
    end
  end
  return out
end
"#;

/// `ARGV`: prefix, self, kind (`uids`, `group`), data, request id (empty: no
/// acknowledgement), spec, then the uids (or the group). Returns `{online, offline uids,
/// nodes published to, uids targeted, streams trimmed}`; offline uids are queued.
pub(super) const PUSH_INBOX: &str = r#"
local self, kind, data, req = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ib = ibx_spec(ARGV[6])
local list = {}
if kind == 'group' then
  list = redis.call('SMEMBERS', P .. 'group:' .. ARGV[7])
  table.sort(list)
else
  for i = 7, #ARGV do list[#list + 1] = ARGV[i] end
end
local uids = distinct(list)
local online, offline, order = ibx_push(ib, uids, data, self, req)
return {online, offline, order, uids, ibx_trimmed}
"#;

/// `ARGV`: prefix, self, data, spec (empty: the inbox is off), request id. Appends to the
/// broadcast stream (inbox on) and publishes to `P all`. Returns `{offset or 0, live nodes}`:
/// the nodes whose counts the receipt waits for.
pub(super) const BROADCAST: &str = r#"
local ib = ibx_spec(ARGV[4])
local req = ARGV[5]
if req == '' then req = nil end
local msg = {k = 'all', d = ARGV[3], o = ARGV[2], r = req}
local a = 0
if ib then
  a = ibx_append(ib, 'all', ARGV[3], now_ms(), true)
  msg.a, msg.e = int(a), ibx_epoch(ib)
end
redis.call('PUBLISH', P .. 'all', cjson.encode(msg))
local nodes = {}
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if live(node) then nodes[#nodes + 1] = node end
end
return {a, nodes}
"#;

/// `ARGV`: prefix, self, uid, spec, route (`1`: the uid's first tab on this node, whose
/// route is written here, before the read), uid mode (`live`, `pending`, `after`, or
/// `first`: `pending` if no other live node holds the uid, else `live`), uid offset, all
/// mode (`live`, `after`), all offset, the epoch of the client's position. Returns
/// `{epoch, uid stream read, broadcast stream read}` (see `ibx_read`).
pub(super) const BIND: &str = r#"
local self, uid = ARGV[2], ARGV[3]
local ib = ibx_spec(ARGV[4])
local mode, amode = ARGV[6], ARGV[8]
if ARGV[5] == '1' then
  if mode == 'first' then
    mode = 'pending'
    for _, node in ipairs(redis.call('SMEMBERS', P .. 'route:' .. uid)) do
      if node ~= self and live(node) then mode = 'live' end
    end
  end
  redis.call('SADD', P .. 'route:' .. uid, self)
  redis.call('SADD', P .. 'uids:' .. self, uid)
elseif mode == 'first' then
  mode = 'live'
end
local e, now = ibx_epoch(ib), now_ms()
if ARGV[10] ~= e then
  if mode == 'after' then mode = 'epoch' end
  if amode == 'after' then amode = 'epoch' end
end
return {e, ibx_read(ib, 'u:' .. uid, mode, tonumber(ARGV[7]), now, true),
        ibx_read(ib, 'all', amode, tonumber(ARGV[9]), now, false)}
"#;
