//! Who is online: uids with their connections (one per browser tab), and groups of uids.

use crate::ConnId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The online users, their connections and the groups they belong to.
///
/// Groups hold uids, not connections: a uid stays in its groups while it is offline, so a
/// user who reconnects receives group pushes again without re-joining. A group whose last
/// member leaves is removed.
#[derive(Debug, Default)]
pub struct Registry {
    /// uid → its connections. A `BTreeMap` so [`Registry::online_uids`] pages in a stable,
    /// sorted order; never holds an empty set (the uid is removed with its last conn).
    uids: BTreeMap<String, BTreeSet<ConnId>>,
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
        self.uids.entry(uid.to_owned()).or_default().insert(conn);
    }

    /// Forgets `conn` (it closed); returns the uid it was bound to. Other connections of
    /// the same uid stay; the uid goes offline with its last one. Groups are not touched.
    pub fn unbind(&mut self, conn: ConnId) -> Option<String> {
        let uid = self.conns.remove(&conn)?;
        if let Some(set) = self.uids.get_mut(&uid) {
            set.remove(&conn);
            if set.is_empty() {
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
        self.uids.get(uid).into_iter().flatten().copied()
    }

    /// How many connections `uid` has (0 if offline).
    pub fn conn_count(&self, uid: &str) -> usize {
        self.uids.get(uid).map_or(0, BTreeSet::len)
    }

    /// Whether `uid` has at least one connection.
    pub fn is_online(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Online uids in sorted order, skipping `offset` and returning at most `limit`: pages
    /// are stable as long as nobody connects or leaves between two calls.
    pub fn online_uids(&self, offset: usize, limit: usize) -> Vec<&str> {
        self.uids
            .keys()
            .skip(offset)
            .take(limit)
            .map(String::as_str)
            .collect()
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
#[path = "registry_tests.rs"]
mod tests;
