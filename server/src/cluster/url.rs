//! `redis://[user:password@]host:port[/db]`: where the cluster's Redis is and how to log in.

use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed `cluster.redis`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedisUrl {
    /// Resolved once, at start.
    pub(crate) addr: SocketAddr,
    /// ACL user (`AUTH user password`); none: `AUTH password` (the `default` user).
    pub(crate) user: Option<String>,
    /// None: no `AUTH`.
    pub(crate) password: Option<String>,
    /// `SELECT db` (0 by default).
    pub(crate) db: u32,
}

/// Parses `redis://[user:password@]host[:port][/db]` (port 6379 by default; `:password@`
/// without a user authenticates the `default` user). Percent-escapes are decoded in the
/// user and password.
pub(crate) fn parse(url: &str) -> Result<RedisUrl, String> {
    let rest = url.strip_prefix("redis://").ok_or_else(|| {
        format!("cluster.redis = {url:?}: expected redis://[user:password@]host:port[/db]")
    })?;
    let (authority, db) = match rest.split_once('/') {
        Some((a, "")) => (a, 0),
        Some((a, db)) => (
            a,
            db.parse::<u32>()
                .map_err(|_| format!("cluster.redis: database {db:?} is not a number"))?,
        ),
        None => (rest, 0),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(info) => match info.split_once(':') {
            Some(("", p)) => (None, Some(unescape(p)?)),
            Some((u, p)) => (Some(unescape(u)?), Some(unescape(p)?)),
            None => (None, Some(unescape(info)?)),
        },
    };
    let hostport = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !hostport.ends_with(']')
    {
        hostport.to_string()
    } else {
        format!("{hostport}:6379")
    };
    let addr = hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cluster.redis: cannot resolve {hostport:?}"))?;
    Ok(RedisUrl {
        addr,
        user,
        password,
        db,
    })
}

fn unescape(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("cluster.redis: bad %-escape in the credentials")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "cluster.redis: credentials are not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form() {
        let u = parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!(
            (u.addr.port(), u.user, u.password, u.db),
            (6380, None, None, 2)
        );
        let u = parse("redis://alice:p%40ss@127.0.0.1:7000").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref(), u.db),
            (Some("alice"), Some("p@ss"), 0)
        );
        let u = parse("redis://:secret@127.0.0.1").unwrap();
        assert_eq!(
            (u.addr.port(), u.user, u.password.as_deref()),
            (6379, None, Some("secret"))
        );
        assert!(parse("http://127.0.0.1:6379").is_err());
        assert!(parse("redis://127.0.0.1:6379/x").is_err());
        assert!(parse("redis://u:%zz@127.0.0.1").is_err());
    }
}
