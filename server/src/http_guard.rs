//! Keeps web pages out of the HTTP API. A page the operator's browser opens can send
//! requests to `127.0.0.1:2121` (cross-site request forgery), and a hostile DNS name that
//! resolves to 127.0.0.1 can even read the answers (DNS rebinding). Backends are not
//! browsers, so the API refuses what only browsers send:
//!
//! - an `Origin` header not listed in `auth.api_origins` (browsers send one with every
//!   cross-origin POST and every `fetch`);
//! - a `Host` that is a DNS name other than `localhost` or one in `auth.api_hosts` (an IP
//!   literal cannot be rebound);
//! - a POST whose `Content-Type` is not JSON (an HTML form can only send `text/plain`,
//!   urlencoded or multipart without a CORS preflight, which the API never answers).

use super::config::Auth;
use pushman::codec::http::Request;

/// Why a request was refused: the status and the message for the JSON error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    /// 403 or 415.
    pub(super) status: u16,
    /// Says what to change.
    pub(super) message: String,
}

/// Checks `req` against the rules above.
pub(super) fn check(req: &Request, auth: &Auth) -> Result<(), Refusal> {
    if let Some(origin) = req.header("origin") {
        let origin = String::from_utf8_lossy(origin);
        if !auth.api_origins.iter().any(|o| *o == origin) {
            return Err(forbidden(format!(
                "requests from web pages are refused (Origin: {origin}); \
                 list the origin in auth.api_origins to allow it"
            )));
        }
    }
    if let Some(host) = req.header("host") {
        let host = String::from_utf8_lossy(host);
        if !host_allowed(&host, &auth.api_hosts) {
            return Err(forbidden(format!(
                "Host {host} is not allowed (DNS rebinding); use an IP address or localhost, \
                 or list the name in auth.api_hosts"
            )));
        }
    }
    if req.method == "POST" && !is_json(req.header("content-type")) {
        return Err(Refusal {
            status: 415,
            message: "POST bodies must be sent with Content-Type: application/json".into(),
        });
    }
    Ok(())
}

fn forbidden(message: String) -> Refusal {
    Refusal {
        status: 403,
        message,
    }
}

/// Whether `host` (a `Host` header: name or address, optional port) names this server
/// without a DNS name that someone else controls.
fn host_allowed(host: &str, names: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split_once(']')
                .is_some_and(|(a, _)| a.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Whether a `Content-Type` is JSON: `application/json` or `application/*+json`, any
/// parameters.
fn is_json(content_type: Option<&[u8]>) -> bool {
    let Some(value) = content_type else {
        return false;
    };
    let value = String::from_utf8_lossy(value);
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let names = vec!["push.internal".to_string()];
        for ok in [
            "127.0.0.1:2121",
            "127.0.0.1",
            "10.1.2.3:80",
            "[::1]:2121",
            "[::1]",
            "localhost:2121",
            "LOCALHOST",
            "push.internal:2121",
        ] {
            assert!(host_allowed(ok, &names), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:2121",
            "127.0.0.1.evil.example",
            "[evil]:1",
            "",
        ] {
            assert!(!host_allowed(refused, &names), "{refused}");
        }
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json(Some(ok.as_bytes())), "{ok}");
        }
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "json",
            "",
        ] {
            assert!(!is_json(Some(refused.as_bytes())), "{refused}");
        }
        assert!(!is_json(None));
    }
}
