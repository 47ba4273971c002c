//! A parsed request and its accessors (path, query, headers, keep-alive).

/// A parsed request. Owned: HTTP is not pushman's hot path, and an owned request can be
/// handed to callbacks while the reader's buffer is reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent: path and query, e.g. `/push?token=abc`.
    pub target: String,
    /// The minor version: `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub version: u8,
    /// Headers in the order received; names as sent (compare them case-insensitively).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (`Content-Length` bytes); empty for a head decoded alone.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let (_, value) = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        Some(value)
    }

    /// Every header named `name` (ASCII case-insensitive), in order.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The target's path, without the query.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(&self.target, |(path, _)| path)
    }

    /// The target's query string without the `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// The first query parameter named `name`, percent-decoded (`+` as space), as
    /// `application/x-www-form-urlencoded` says.
    ///
    /// Names are compared after decoding too. A `%` not followed by two hex digits is kept
    /// as is, and bytes that do not form UTF-8 become U+FFFD: a sloppy client gets a best
    /// effort, not an error.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query()?.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// Whether the connection stays open after the response: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        // RFC 9112 §9.3: `close` always wins; an HTTP/1.0 peer must opt in.
        if self.connection_has("close") {
            return false;
        }
        self.version >= 1 || self.connection_has("keep-alive")
    }

    /// Whether a `Connection` header lists `token` (comma-separated, case-insensitive).
    ///
    /// All `Connection` headers count: a list may be split across several lines
    /// (RFC 9110 §5.3).
    pub fn connection_has(&self, token: &str) -> bool {
        self.headers_named("connection")
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }
}
