//! The Lua scripts the cluster runs in Redis (each one `EVALSHA`: one round trip, atomic).
//! Every script takes the key prefix as `ARGV[1]`; keys are built inside (one Redis, not
//! Redis Cluster: see docs/CLUSTER.md for the sharded layout).
//!
//! Keys (`P` = `cluster.key_prefix`):
//! - `P node:<id>`: a node's lease (`SET … PX lease`), value `{"conns":n,"uids":m}`;
//!   `P nodes`: the nodes with routes (a janitor forgets those whose lease is gone).
//! - `P route:<uid>`: the nodes holding `uid`; `P uids:<node>`: the uids a node holds.
//! - `P group:<g>`: a group's uids; `P groups`: group names.
//! - `P sched` (zset id → due ms), `P sched:data` (hash id → payload), `P sched:seq`.
//! - Channels: `P inbox:<node>` per node, `P all` for broadcasts.

use super::inbox_scripts;

/// Shared by the scripts that route: `live(node)` (a lease exists, cached per call),
/// `route(uids, exclude)` and `publish(...)`.
const ROUTING: &str = r#"
local P = ARGV[1]
local alive = {}
local function live(node)
  local v = alive[node]
  if v == nil then
    v = redis.call('EXISTS', P .. 'node:' .. node) == 1
    alive[node] = v
  end
  return v
end
local function route(uids, exclude)
  local per, order, offline, online = {}, {}, {}, 0
  for _, uid in ipairs(uids) do
    local found = false
    for _, node in ipairs(redis.call('SMEMBERS', P .. 'route:' .. uid)) do
      if live(node) then
        found = true
        if node ~= exclude then
          if per[node] == nil then
            per[node] = {}
            order[#order + 1] = node
          end
          local t = per[node]
          t[#t + 1] = uid
        end
      end
    end
    if found then online = online + 1 else offline[#offline + 1] = uid end
  end
  return per, order, offline, online
end
local function publish(per, order, kind, data, origin, req)
  if req == '' then req = nil end
  for _, node in ipairs(order) do
    redis.call('PUBLISH', P .. 'inbox:' .. node,
      cjson.encode({k = kind, u = per[node], d = data, o = origin, r = req}))
  end
end
"#;

/// `ARGV`: prefix, self, kind (`uids`, `group`, `kick`, `count`), data, request id (empty: no
/// acknowledgement wanted), then the uids (or the group). Publishes to every other live
/// node holding a target uid. Returns `{online, offline uids, nodes published to, uids
/// targeted}`.
const PUSH: &str = r#"
local self, kind, data, req = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local uids = {}
if kind == 'group' then
  uids = redis.call('SMEMBERS', P .. 'group:' .. ARGV[6])
  table.sort(uids)
else
  for i = 6, #ARGV do uids[#uids + 1] = ARGV[i] end
end
local per, order, offline, online = route(uids, self)
publish(per, order, kind == 'group' and 'uids' or kind, data, self, req)
return {online, offline, order, uids}
"#;

/// `ARGV`: prefix, at (ms), payload. Returns the new id. When it is the schedule's new
/// earliest push, every node is nudged (`{"k":"sched"}` on `P all`): idle nodes sleep until
/// the earliest due time they know of.
const SCHEDULE: &str = r#"
local id = redis.call('INCR', P .. 'sched:seq')
redis.call('ZADD', P .. 'sched', ARGV[2], id)
redis.call('HSET', P .. 'sched:data', id, ARGV[3])
if redis.call('ZRANGE', P .. 'sched', 0, 0)[1] == tostring(id) then
  redis.call('PUBLISH', P .. 'all', '{"k":"sched"}')
end
return id
"#;

/// `ARGV`: prefix, max, inbox spec (empty: off). Takes up to `max` pushes due by Redis's
/// clock out of the schedule and publishes each to the live nodes holding its targets (with
/// the inbox: appended to their streams, see `inbox_scripts.rs`), in the same atomic step:
/// a push is claimed once, and delivered even if the node that ran this dies right after.
/// Returns `{claimed, ms until the next push is due by Redis's clock (-1: none)}`.
const CLAIM: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ib = ibx_spec(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', P .. 'sched', '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', P .. 'sched', id)
  local raw = redis.call('HGET', P .. 'sched:data', id)
  redis.call('HDEL', P .. 'sched:data', id)
  local ok, push = pcall(cjson.decode, raw or '')
  if ok and type(push) == 'table' then
    if push.t == 'all' then
      local msg = {k = 'all', d = push.d, o = 'schedule'}
      if ib then
        msg.a, msg.e = int(ibx_append(ib, 'all', push.d, now, true)), ibx_epoch(ib)
      end
      redis.call('PUBLISH', P .. 'all', cjson.encode(msg))
    else
      local uids = {}
      if push.t == 'group' then
        uids = redis.call('SMEMBERS', P .. 'group:' .. push.v)
      elseif push.t == 'uid' then
        uids = {push.v}
      else
        uids = push.v
      end
      if ib then
        ibx_push(ib, distinct(uids), push.d, 'schedule', '')
      else
        local per, order = route(uids, nil)
        publish(per, order, 'uids', push.d, 'schedule', '')
      end
    end
  end
end
local next = redis.call('ZRANGE', P .. 'sched', 0, 0, 'WITHSCORES')
local wait = -1
if next[2] then wait = math.max(0, tonumber(next[2]) - now) end
return {#ids, wait}
"#;

/// `ARGV`: prefix, id. Returns 1 if it was pending.
const CANCEL: &str = r#"
local n = redis.call('ZREM', P .. 'sched', ARGV[2])
redis.call('HDEL', P .. 'sched:data', ARGV[2])
return n
"#;

/// `ARGV`: prefix, limit. Returns `{pending, {id, at, payload}…}`, soonest first.
const LIST_SCHEDULED: &str = r#"
local ids = redis.call('ZRANGE', P .. 'sched', 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #ids, 2 do
  out[#out + 1] = {ids[i], ids[i + 1], redis.call('HGET', P .. 'sched:data', ids[i]) or ''}
end
return {redis.call('ZCARD', P .. 'sched'), out}
"#;

/// `ARGV`: prefix, self, reset, uids… With reset, this node's old routes are dropped
/// first (a reconnect: some uids may have left meanwhile). Then each uid routes here.
const ROUTE_ADD: &str = r#"
local self = ARGV[2]
if ARGV[3] == '1' then
  for _, uid in ipairs(redis.call('SMEMBERS', P .. 'uids:' .. self)) do
    redis.call('SREM', P .. 'route:' .. uid, self)
  end
  redis.call('DEL', P .. 'uids:' .. self)
end
for i = 4, #ARGV do
  redis.call('SADD', P .. 'route:' .. ARGV[i], self)
  redis.call('SADD', P .. 'uids:' .. self, ARGV[i])
end
return #ARGV - 3
"#;

/// `ARGV`: prefix, self, uid: the uid's last tab on this node is gone.
const ROUTE_DEL: &str = r#"
redis.call('SREM', P .. 'route:' .. ARGV[3], ARGV[2])
return redis.call('SREM', P .. 'uids:' .. ARGV[2], ARGV[3])
"#;

/// `ARGV`: prefix, offset, limit. Returns `{total, page}` of the uids online on live nodes,
/// sorted (bytewise, as the embedded registry sorts).
const ONLINE_LIST: &str = r#"
local seen, all = {}, {}
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if live(node) then
    for _, uid in ipairs(redis.call('SMEMBERS', P .. 'uids:' .. node)) do
      if not seen[uid] then
        seen[uid] = true
        all[#all + 1] = uid
      end
    end
  end
end
table.sort(all)
local page, first = {}, tonumber(ARGV[2]) + 1
for i = first, math.min(#all, first + tonumber(ARGV[3]) - 1) do page[#page + 1] = all[i] end
return {#all, page}
"#;

/// `ARGV`: prefix. Returns `{uids, connections, groups, scheduled, live nodes}`.
const TOTALS: &str = r#"
local seen, uids, conns, nodes = {}, 0, 0, 0
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  local lease = redis.call('GET', P .. 'node:' .. node)
  if lease then
    nodes = nodes + 1
    local ok, v = pcall(cjson.decode, lease)
    if ok and type(v) == 'table' and v.conns then conns = conns + v.conns end
    for _, uid in ipairs(redis.call('SMEMBERS', P .. 'uids:' .. node)) do
      if not seen[uid] then
        seen[uid] = true
        uids = uids + 1
      end
    end
  end
end
return {uids, conns, redis.call('SCARD', P .. 'groups'), redis.call('ZCARD', P .. 'sched'), nodes}
"#;

/// `ARGV`: prefix, self, value, ms. Renews this node's lease; returns 1 if it was still
/// there, 0 if it had lapsed (or is new): then the node writes its routes again, since a
/// janitor may have removed them meanwhile.
const LEASE: &str = r#"
local key = P .. 'node:' .. ARGV[2]
local had = redis.call('EXISTS', key)
redis.call('SET', key, ARGV[3], 'PX', ARGV[4])
redis.call('SADD', P .. 'nodes', ARGV[2])
return had
"#;

/// `ARGV`: prefix, self. Forgets the nodes whose lease is gone: their routes, their uid
/// set, their entry in `P nodes`. Returns how many nodes were forgotten.
const JANITOR: &str = r#"
local gone = 0
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if node ~= ARGV[2] and not live(node) then
    for _, uid in ipairs(redis.call('SMEMBERS', P .. 'uids:' .. node)) do
      redis.call('SREM', P .. 'route:' .. uid, node)
    end
    redis.call('DEL', P .. 'uids:' .. node)
    redis.call('SREM', P .. 'nodes', node)
    gone = gone + 1
  end
end
return gone
"#;

/// `ARGV`: prefix, group, uid. Returns 1 if added.
const JOIN: &str = r#"
redis.call('SADD', P .. 'groups', ARGV[2])
return redis.call('SADD', P .. 'group:' .. ARGV[2], ARGV[3])
"#;

/// `ARGV`: prefix, group, uid. Returns 1 if removed; the group goes with its last member.
const LEAVE: &str = r#"
local n = redis.call('SREM', P .. 'group:' .. ARGV[2], ARGV[3])
if redis.call('SCARD', P .. 'group:' .. ARGV[2]) == 0 then
  redis.call('SREM', P .. 'groups', ARGV[2])
end
return n
"#;

/// A script: its source (with the routing helpers) and SHA1, for `SCRIPT LOAD` and
/// `EVALSHA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    Push,
    Schedule,
    Claim,
    Cancel,
    ListScheduled,
    RouteAdd,
    RouteDel,
    OnlineList,
    Totals,
    Join,
    Leave,
    Lease,
    Janitor,
    PushInbox,
    Broadcast,
    Bind,
}

impl Script {
    pub(crate) const ALL: [Script; 16] = [
        Self::Push,
        Self::Schedule,
        Self::Claim,
        Self::Cancel,
        Self::ListScheduled,
        Self::RouteAdd,
        Self::RouteDel,
        Self::OnlineList,
        Self::Totals,
        Self::Join,
        Self::Leave,
        Self::Lease,
        Self::Janitor,
        Self::PushInbox,
        Self::Broadcast,
        Self::Bind,
    ];

    fn body(self) -> &'static str {
        match self {
            Self::Push => PUSH,
            Self::Schedule => SCHEDULE,
            Self::Claim => CLAIM,
            Self::Cancel => CANCEL,
            Self::ListScheduled => LIST_SCHEDULED,
            Self::RouteAdd => ROUTE_ADD,
            Self::RouteDel => ROUTE_DEL,
            Self::OnlineList => ONLINE_LIST,
            Self::Totals => TOTALS,
            Self::Join => JOIN,
            Self::Leave => LEAVE,
            Self::Lease => LEASE,
            Self::Janitor => JANITOR,
            Self::PushInbox => inbox_scripts::PUSH_INBOX,
            Self::Broadcast => inbox_scripts::BROADCAST,
            Self::Bind => inbox_scripts::BIND,
        }
    }

    /// The full source: the routing helpers, the inbox helpers for the scripts that append
    /// or read (each script runs its whole chunk per call: ~1 µs more for the others), then
    /// the body.
    pub(crate) fn source(self) -> String {
        let inbox = match self {
            Self::Claim | Self::PushInbox | Self::Broadcast | Self::Bind => inbox_scripts::HELPERS,
            _ => "",
        };
        format!("{ROUTING}{inbox}{}", self.body())
    }

    /// The SHA1 Redis names the script by (hex).
    pub(crate) fn sha(self) -> String {
        use sha1::{Digest, Sha1};
        let digest = Sha1::digest(self.source().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}
