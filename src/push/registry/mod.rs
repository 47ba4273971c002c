//! Who is online: uids with their connections (one per browser tab), and groups of uids.

use crate::{push::inbox::StreamRef, ConnId};
use std::collections::{hash_map::Entry, BTreeMap, BTreeSet, HashMap};

/// An online uid.
#[derive(Debug)]
struct Online {
    tabs: Tabs,
    /// Its inbox stream, kept here by the push path (see [`Registry::for_push`]).
    stream: Option<StreamRef>,
}

/// A uid's connections, sorted (oldest first). Mostly one: it sits in the map's entry, so
/// a push to it reads no other allocation (one cold cache line fewer per push); a few
/// tabs go in a sorted vector, which beats a set in both lookups and memory.
#[derive(Debug)]
enum Tabs {
    One(ConnId),
    Many(Vec<ConnId>),
}

impl Tabs {
    fn as_slice(&self) -> &[ConnId] {
        match self {
            Self::One(conn) => std::slice::from_ref(conn),
            Self::Many(conns) => conns,
        }
    }

    fn insert(&mut self, conn: ConnId) {
        match self {
            Self::One(first) if *first == conn => {}
            Self::One(first) => {
                let (a, b) = (conn.min(*first), conn.max(*first));
                *self = Self::Many(vec![a, b]);
            }
            Self::Many(conns) => {
                if let Err(at) = conns.binary_search(&conn) {
                    conns.insert(at, conn);
                }
            }
        }
    }

    /// Removes `conn`; false if no connection is left.
    fn remove(&mut self, conn: ConnId) -> bool {
        match self {
            Self::One(only) => *only != conn,
            Self::Many(conns) => {
                conns.retain(|&c| c != conn);
                match conns[..] {
                    [] => false,
                    [only] => {
                        *self = Self::One(only);
                        true
                    }
                    _ => true,
                }
            }
        }
    }
}

/// What a push to an online uid needs, from one lookup (see [`Registry::for_push`]).
#[derive(Debug)]
pub struct PushTarget<'a> {
    /// The uid's connections, oldest first.
    pub conns: &'a [ConnId],
    /// The uid's inbox stream as the last push found it (`None` at first): given to
    /// [`Inbox::append_uid_at`](crate::push::inbox::Inbox::append_uid_at) and updated
    /// from what it returns, it spares the inbox a second lookup of the uid.
    pub stream: &'a mut Option<StreamRef>,
}

/// The online users, their connections and the groups they belong to.
///
/// Groups hold uids, not connections: a uid stays in its groups while it is offline, so a
/// user who reconnects receives group pushes again without re-joining. A group whose last
/// member leaves is removed.
#[derive(Debug, Default)]
pub struct Registry {
    /// uid → its connections; never holds a uid without one (the uid is removed with its last
    /// conn). Hashed: every push looks a uid up, and a B-tree's string comparisons cost
    /// a cache miss per level with 10,000 uids (measured: 6.6 % of the daemon's CPU at 10k
    /// pushes/s, `docs/BENCHMARKS.md`).
    uids: HashMap<String, Online>,
    /// conn → the uid it is bound to: the reverse index that makes `unbind` O(log n).
    conns: HashMap<ConnId, String>,
    /// group → member uids; never holds an empty set.
    groups: BTreeMap<String, BTreeSet<String>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `conn` to `uid`. A connection belongs to one uid: binding it again to another
    /// uid moves it (and the old uid goes offline if that was its last connection).
    pub fn bind(&mut self, uid: &str, conn: ConnId) {
        if self.conns.get(&conn).is_some_and(|old| old == uid) {
            return;
        }
        self.unbind(conn);
        self.conns.insert(conn, uid.to_owned());
        match self.uids.entry(uid.to_owned()) {
            Entry::Occupied(online) => online.into_mut().tabs.insert(conn),
            Entry::Vacant(entry) => {
                entry.insert(Online {
                    tabs: Tabs::One(conn),
                    stream: None,
                });
            }
        }
    }

    /// Forgets `conn` (it closed); returns the uid it was bound to. Other connections of
    /// the same uid stay; the uid goes offline with its last one. Groups are not touched.
    pub fn unbind(&mut self, conn: ConnId) -> Option<String> {
        let uid = self.conns.remove(&conn)?;
        if let Some(online) = self.uids.get_mut(&uid) {
            if !online.tabs.remove(conn) {
                self.uids.remove(&uid);
            }
        }
        Some(uid)
    }

    /// The uid `conn` is bound to, if any.
    pub fn uid_of(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).map(String::as_str)
    }

    /// The connections of `uid`, oldest first; empty if it is offline.
    pub fn conns(&self, uid: &str) -> impl Iterator<Item = ConnId> + '_ {
        self.uids
            .get(uid)
            .into_iter()
            .flat_map(|online| online.tabs.as_slice())
            .copied()
    }

    /// `uid`'s connections and its inbox stream reference, or `None` if it is offline: the
    /// push path's one lookup of the uid (10,000 uids: each lookup is a few cold cache
    /// lines, and the inbox's own would cost as much again).
    pub fn for_push(&mut self, uid: &str) -> Option<PushTarget<'_>> {
        self.uids.get_mut(uid).map(|online| PushTarget {
            conns: online.tabs.as_slice(),
            stream: &mut online.stream,
        })
    }

    /// How many connections `uid` has (0 if offline).
    pub fn conn_count(&self, uid: &str) -> usize {
        self.uids
            .get(uid)
            .map_or(0, |online| online.tabs.as_slice().len())
    }

    /// Whether `uid` has at least one connection.
    pub fn is_online(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Online uids in sorted order, skipping `offset` and returning at most `limit`: pages
    /// are stable as long as nobody connects or leaves between two calls.
    /// O(n + limit·log limit) per page: an admin query, while lookups stay O(1).
    pub fn online_uids(&self, offset: usize, limit: usize) -> Vec<&str> {
        let mut all: Vec<&str> = self.uids.keys().map(String::as_str).collect();
        let end = offset.saturating_add(limit).min(all.len());
        if offset >= end {
            return Vec::new();
        }
        // The `end` smallest uids first, then the page among them, then its order.
        if end < all.len() {
            all.select_nth_unstable(end);
        }
        let head = &mut all[..end];
        if offset > 0 {
            head.select_nth_unstable(offset);
        }
        head[offset..].sort_unstable();
        head[offset..].to_vec()
    }

    /// How many uids are online.
    pub fn uid_total(&self) -> usize {
        self.uids.len()
    }

    /// How many connections are bound to a uid.
    pub fn conn_total(&self) -> usize {
        self.conns.len()
    }

    /// Adds `uid` to `group` (created if needed); `true` if it was not a member yet. The uid
    /// need not be online.
    pub fn join(&mut self, group: &str, uid: &str) -> bool {
        match self.groups.get_mut(group) {
            Some(members) => members.insert(uid.to_owned()),
            None => {
                let members = BTreeSet::from([uid.to_owned()]);
                self.groups.insert(group.to_owned(), members);
                true
            }
        }
    }

    /// Removes `uid` from `group`; `true` if it was a member. The group goes with its last
    /// member.
    pub fn leave(&mut self, group: &str, uid: &str) -> bool {
        let Some(members) = self.groups.get_mut(group) else {
            return false;
        };
        let was = members.remove(uid);
        if members.is_empty() {
            self.groups.remove(group);
        }
        was
    }

    /// The members of `group` (online or not), sorted; empty if there is no such group.
    pub fn members(&self, group: &str) -> Vec<&str> {
        self.groups
            .get(group)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// How many groups have members.
    pub fn groups_total(&self) -> usize {
        self.groups.len()
    }

    /// The names of all groups, sorted.
    pub fn group_names(&self) -> Vec<&str> {
        self.groups.keys().map(String::as_str).collect()
    }

    /// Every connection of every online member of `group`: where a group push goes.
    pub fn group_conns(&self, group: &str) -> Vec<ConnId> {
        self.groups
            .get(group)
            .into_iter()
            .flatten()
            .flat_map(|uid| self.conns(uid))
            .collect()
    }

    /// Every bound connection: where a broadcast goes.
    pub fn all_conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.keys().copied()
    }
}

#[cfg(test)]
mod tests;
