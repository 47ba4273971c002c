//! The client's address behind a trusted reverse proxy (`auth.trusted_proxies`).
//!
//! A proxy appends the address it received a request from to `X-Forwarded-For`, so the
//! header reads client, proxy 1, .., proxy n-1, and the TCP peer is proxy n. Only the
//! entries appended by proxies we trust are true: walking from the right, the first
//! address that is not a trusted proxy is the client (anything left of it is whatever the
//! client chose to send). `X-Real-IP`, which nginx sets to the address it saw, is the
//! fallback. From a peer that is not trusted, both headers are ignored.

use ipnet::IpNet;
use pushman::codec::http::Request;
use std::net::IpAddr;

/// Whether `ip` is one of the trusted proxies.
pub(crate) fn is_trusted(trusted: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client's address for a request that `peer` sent: `peer` itself unless `peer` is a
/// trusted proxy that names a client.
pub(crate) fn client_ip(trusted: &[IpNet], peer: IpAddr, req: &Request) -> IpAddr {
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = req
        .headers_named("x-forwarded-for")
        .flat_map(|value| value.split(|&b| b == b','))
        .map(parse_ip)
        .collect::<Option<_>>()
        .unwrap_or_default();
    if let Some(&client) = forwarded.iter().rev().find(|&&ip| !is_trusted(trusted, ip)) {
        return client;
    }
    // Every hop is a trusted proxy: the leftmost is the closest we know to the client.
    if let Some(&first) = forwarded.first() {
        return first;
    }
    req.header("x-real-ip").and_then(parse_ip).unwrap_or(peer)
}

/// One address as a proxy writes it: trimmed; IPv6 possibly in brackets. Ports are not
/// part of the standard header and are refused rather than guessed at.
fn parse_ip(text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok().map(canonical)
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`, from a dual-stack listener) as plain IPv4, so one
/// client is one address in the per-IP count whichever way it came.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            target: "/".into(),
            version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
        }
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let req = request(&[("X-Forwarded-For", "1.2.3.4"), ("X-Real-IP", "1.2.3.4")]);
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(&trusted, ip("192.0.2.9"), &req), ip("192.0.2.9"));
        assert_eq!(client_ip(&[], ip("10.0.0.1"), &req), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // A client that forged an entry, then two of our proxies.
        let req = request(&[("X-Forwarded-For", "1.2.3.4, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_ip(&trusted, ip("10.0.0.1"), &req),
            ip("198.51.100.7")
        );
        // The same list split over two header lines.
        let req = request(&[
            ("X-Forwarded-For", "1.2.3.4, 198.51.100.7"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(
            client_ip(&trusted, ip("10.0.0.1"), &req),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn x_real_ip_is_the_fallback_and_garbage_is_ignored() {
        let trusted = nets(&["127.0.0.1/32"]);
        let peer = ip("127.0.0.1");
        let req = request(&[("X-Real-IP", " 203.0.113.5 ")]);
        assert_eq!(client_ip(&trusted, peer, &req), ip("203.0.113.5"));
        let req = request(&[
            ("X-Forwarded-For", "not an ip"),
            ("X-Real-IP", "203.0.113.5"),
        ]);
        assert_eq!(client_ip(&trusted, peer, &req), ip("203.0.113.5"));
        let req = request(&[("X-Forwarded-For", "1.2.3.4:80")]);
        assert_eq!(client_ip(&trusted, peer, &req), peer);
        assert_eq!(client_ip(&trusted, peer, &request(&[])), peer);
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let trusted = nets(&["127.0.0.1/32", "fd00::/8"]);
        let req = request(&[("X-Forwarded-For", "[2001:db8::1], fd00::2")]);
        assert_eq!(client_ip(&trusted, ip("fd00::1"), &req), ip("2001:db8::1"));
        // A dual-stack listener's view of an IPv4 proxy.
        let req = request(&[("X-Forwarded-For", "::ffff:192.0.2.1")]);
        assert_eq!(
            client_ip(&trusted, ip("::ffff:127.0.0.1"), &req),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn a_chain_of_trusted_hops_gives_the_leftmost() {
        let trusted = nets(&["10.0.0.0/8"]);
        let req = request(&[("X-Forwarded-For", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(client_ip(&trusted, ip("10.0.0.1"), &req), ip("10.1.1.1"));
    }
}
