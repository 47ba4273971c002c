//! HTTP/1.x requests: the head parsed by `httparse`, a `Content-Length` body, and a response
//! encoder.

use super::Decode;
use std::fmt;

/// Most headers a request may carry.
pub const MAX_HEADERS: usize = 64;

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
    fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
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

    /// The first query parameter named `name`, percent-decoded (`+` as space).
    ///
    /// Names are compared after decoding too. A `%` not followed by two hex digits is kept
    /// as is, and bytes that do not form UTF-8 become U+FFFD: a sloppy client gets a best
    /// effort, not an error.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
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

/// Decodes `%XX` escapes and `+` (as space) in a query component.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some(&[hi, lo]) if b == b'%' => hex(hi).zip(hex(lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (b, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (_, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one hex digit.
fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Why a request can never become valid. Each maps to a response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// The head is not HTTP/1.x syntax (`httparse`'s reason), or has more than
    /// [`MAX_HEADERS`] headers.
    Parse(httparse::Error),
    /// The head grew past the limit before its blank line arrived.
    HeadTooLarge {
        /// The limit, in bytes.
        max: usize,
    },
    /// `Content-Length` is larger than the body limit.
    BodyTooLarge {
        /// The announced length.
        len: u64,
        /// The limit, in bytes.
        max: usize,
    },
    /// `Content-Length` is not a decimal number, or appears twice with different values.
    BadContentLength,
    /// `Transfer-Encoding` bodies are not accepted (RFC 9112 §6.1 allows answering 501).
    TransferEncoding,
}

impl HttpError {
    /// The status code to answer with: 400, 431, 413 or 501.
    pub fn status(self) -> u16 {
        match self {
            Self::Parse(_) | Self::BadContentLength => 400,
            Self::HeadTooLarge { .. } => 431,
            Self::BodyTooLarge { .. } => 413,
            Self::TransferEncoding => 501,
        }
    }
}

/// Decodes requests, remembering how far it has scanned for the end of the head.
#[derive(Debug, Clone)]
pub struct HttpCodec {
    /// Largest head accepted (request line and headers), in bytes.
    max_head: usize,
    /// Largest body accepted, in bytes.
    max_body: usize,
    /// Bytes of the pending input already known not to end the head.
    scanned: usize,
    /// A parsed head whose body has not fully arrived, kept so that a slowly sent body does
    /// not make us re-parse the head on every read.
    pending: Option<Pending>,
}

/// A head waiting for its body.
#[derive(Debug, Clone)]
struct Pending {
    /// The request, its body still empty.
    req: Request,
    /// Bytes of input the head takes.
    head_len: usize,
    /// Bytes of input head and body take together.
    total: usize,
}

impl HttpCodec {
    /// A decoder with the given head and body limits.
    pub fn new(max_head: usize, max_body: usize) -> Self {
        Self {
            max_head,
            max_body,
            scanned: 0,
            pending: None,
        }
    }

    /// Decodes a request head and its `Content-Length` body.
    ///
    /// # Errors
    /// [`HttpError`] when the head is malformed or a limit is exceeded.
    ///
    /// A body over the limit or a `Transfer-Encoding` is refused as soon as the head is
    /// parsed, before any of the body is buffered.
    pub fn decode(&mut self, src: &[u8]) -> Result<Decode<Request>, HttpError> {
        let pending = match self.pending.take() {
            Some(pending) => pending,
            None => {
                let Decode::Done {
                    item: req,
                    consumed: head_len,
                } = self.decode_head(src)?
                else {
                    return Ok(Decode::NeedMore);
                };
                let body_len = self.body_len(&req)?;
                // body_len <= max_body, but the sum is checked all the same.
                let total = head_len
                    .checked_add(body_len)
                    .ok_or(HttpError::BodyTooLarge {
                        len: body_len as u64,
                        max: self.max_body,
                    })?;
                Pending {
                    req,
                    head_len,
                    total,
                }
            }
        };
        match src.get(pending.head_len..pending.total) {
            Some(body) => {
                let Pending { mut req, total, .. } = pending;
                req.body = body.to_vec();
                Ok(Decode::Done {
                    item: req,
                    consumed: total,
                })
            }
            None => {
                self.pending = Some(pending);
                Ok(Decode::NeedMore)
            }
        }
    }

    /// The body length `req` announces, checked against the limit.
    fn body_len(&self, req: &Request) -> Result<usize, HttpError> {
        if req.header("transfer-encoding").is_some() {
            return Err(HttpError::TransferEncoding);
        }
        // RFC 9112 §6.3: differing Content-Length values are unrecoverable; equal repeats
        // are harmless.
        let mut len = None;
        for value in req.headers_named("content-length") {
            let parsed = parse_content_length(value)?;
            if len.is_some_and(|seen| seen != parsed) {
                return Err(HttpError::BadContentLength);
            }
            len = Some(parsed);
        }
        let len = len.unwrap_or(0);
        match usize::try_from(len) {
            Ok(n) if n <= self.max_body => Ok(n),
            _ => Err(HttpError::BodyTooLarge {
                len,
                max: self.max_body,
            }),
        }
    }

    /// Decodes a request head only (`consumed` is the head's length and `body` is empty);
    /// used for the WebSocket handshake, where bytes after the head are frames.
    ///
    /// `httparse` runs only on a blank line found past the bytes already scanned, and only
    /// on the bytes up to it, so a head sent a byte at a time costs O(n), not O(n²), and the
    /// outcome never depends on how the input was split into reads.
    ///
    /// # Errors
    /// As [`HttpCodec::decode`], without the body checks.
    pub fn decode_head(&mut self, src: &[u8]) -> Result<Decode<Request>, HttpError> {
        self.pending = None;
        // RFC 9112 §2.2: ignore at least one empty line before the request line. A bounded
        // number are skipped here so that a flood of them is not re-parsed on every read.
        let window = src.get(..=MAX_LEADING_BLANK).unwrap_or(src);
        let Some(start) = window.iter().position(|&b| b != b'\r' && b != b'\n') else {
            if src.len() <= MAX_LEADING_BLANK {
                return self.need_more(src.len());
            }
            // More blank bytes than we skip; the blank line found next is refused below.
            return self.scan(src, MAX_LEADING_BLANK);
        };
        self.scan(src, start)
    }

    /// Looks for the end of a head that starts at `start` in the bytes not yet scanned.
    fn scan(&mut self, src: &[u8], start: usize) -> Result<Decode<Request>, HttpError> {
        // Back up so that a `\r\n\r\n` split across reads is still found.
        let from = self.scanned.saturating_sub(3).max(start).min(src.len());
        let Some(end) = find_blank_line(&src[from..]).map(|i| from + i) else {
            return self.need_more(src.len());
        };
        if end > self.max_head {
            return Err(HttpError::HeadTooLarge { max: self.max_head });
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        let head_len = match parsed.parse(&src[..end]).map_err(HttpError::Parse)? {
            httparse::Status::Complete(n) => n,
            // Only blank lines can leave a head that ends in a blank line incomplete: more
            // of them than MAX_LEADING_BLANK bytes.
            httparse::Status::Partial => return Err(HttpError::Parse(httparse::Error::NewLine)),
        };
        self.scanned = 0;
        let req = Request {
            method: parsed.method.unwrap_or_default().to_owned(),
            target: parsed.path.unwrap_or_default().to_owned(),
            version: parsed.version.unwrap_or_default(),
            headers: parsed
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), h.value.to_vec()))
                .collect(),
            body: Vec::new(),
        };
        Ok(Decode::Done {
            item: req,
            consumed: head_len,
        })
    }

    /// Records that the first `len` bytes hold no complete head: `NeedMore`, or
    /// `HeadTooLarge` once they are more than the limit.
    fn need_more(&mut self, len: usize) -> Result<Decode<Request>, HttpError> {
        if len > self.max_head {
            return Err(HttpError::HeadTooLarge { max: self.max_head });
        }
        self.scanned = len;
        Ok(Decode::NeedMore)
    }
}

/// Most `\r`/`\n` bytes skipped before a request line (pipelining clients may send a stray
/// CRLF after a body).
const MAX_LEADING_BLANK: usize = 8;

/// The end of the first blank line in `buf` (`\n\n` or `\n\r\n`, which covers `\r\n\r\n`).
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(i) = buf.get(at..)?.iter().position(|&b| b == b'\n') {
        let nl = at + i;
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) => return Some(nl + 2),
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ => at = nl + 1,
        }
    }
    None
}

/// A `Content-Length` value: decimal digits only (RFC 9110 §8.6), surrounding blanks allowed.
fn parse_content_length(value: &[u8]) -> Result<u64, HttpError> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadContentLength);
    }
    // A value too big for u64 is over any body limit.
    Ok(digits
        .iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .unwrap_or(u64::MAX))
}

/// A response under construction; [`Response::encode`] writes it with a `Content-Length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers; `Content-Length` is added by `encode`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Whether `encode` leaves the body out while keeping its `Content-Length`: the
    /// answer to a `HEAD` (RFC 9110 §9.3.2).
    pub omit_body: bool,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            omit_body: false,
        }
    }

    /// The same response as the answer to a `HEAD`: headers and `Content-Length` of the
    /// body, without the body.
    #[must_use]
    pub fn without_body(mut self) -> Self {
        self.omit_body = true;
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Appends `HTTP/1.1 status reason`, the headers, `Content-Length` and the body to `out`.
    ///
    /// The `Content-Length` written is always the body's length: one set in `headers` is
    /// skipped rather than sent twice. 1xx and 204 responses get none and no body
    /// (RFC 9110 §8.6). A CR or LF in a name or value is written as a space, so a header
    /// can never split the response.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let status = self.status;
        out.extend_from_slice(
            format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes(),
        );
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("content-length") {
                continue;
            }
            push_field(name, out);
            out.extend_from_slice(b": ");
            push_field(value, out);
            out.extend_from_slice(b"\r\n");
        }
        if (100..200).contains(&status) || status == 204 {
            out.extend_from_slice(b"\r\n");
            return;
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        if !self.omit_body {
            out.extend_from_slice(&self.body);
        }
    }
}

/// Appends `field` with CR and LF replaced by spaces.
fn push_field(field: &str, out: &mut Vec<u8>) {
    out.extend(
        field
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// The standard reason phrase for `status` (`"Unknown"` when it has none).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "malformed request head: {e}"),
            Self::HeadTooLarge { max } => write!(f, "request head larger than {max} bytes"),
            Self::BodyTooLarge { len, max } => {
                write!(f, "request body of {len} bytes exceeds {max}")
            }
            Self::BadContentLength => f.write_str("invalid Content-Length"),
            Self::TransferEncoding => f.write_str("Transfer-Encoding is not supported"),
        }
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &[u8] = b"GET /push?uid=7&msg=hi%20there+you HTTP/1.1\r\nHost: x\r\n\r\n";
    const POST: &[u8] = b"POST /api HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";

    fn decode(src: &[u8]) -> Result<Decode<Request>, HttpError> {
        HttpCodec::new(256, 16).decode(src)
    }

    fn req(src: &[u8]) -> Request {
        match decode(src) {
            Ok(Decode::Done { item, consumed }) if consumed == src.len() => item,
            other => panic!("{other:?}"),
        }
    }

    /// Decodes `input` fed `chunk` bytes at a time (growing buffer, consumed bytes drained).
    fn feed(input: &[u8], chunk: usize) -> (Vec<Request>, Option<HttpError>) {
        let mut codec = HttpCodec::new(256, 16);
        crate::codec::test_util::feed(input, chunk, |b| codec.decode(b))
    }

    #[test]
    fn parses_request_and_body() {
        let r = req(POST);
        assert_eq!(
            (r.method.as_str(), r.target.as_str(), r.version),
            ("POST", "/api", 1)
        );
        assert_eq!(r.headers, [("Content-Length".to_owned(), b"5".to_vec())]);
        assert_eq!(r.body, b"hello");
        assert_eq!(req(b"GET / HTTP/1.0\n\n").version, 0);
        assert_eq!(req(b"\r\nGET / HTTP/1.1\r\n\r\n").method, "GET");
    }

    #[test]
    fn every_prefix_needs_more() {
        for input in [GET, POST] {
            for i in 0..input.len() {
                assert_eq!(decode(&input[..i]), Ok(Decode::NeedMore), "prefix {i}");
            }
        }
    }

    #[test]
    fn pipelined_and_byte_at_a_time() {
        let input = [POST, GET, b"\r\n", POST, b"GET / HT"].concat();
        let whole = feed(&input, input.len());
        assert_eq!(whole.0.len(), 3);
        assert_eq!(whole.0[1].path(), "/push");
        for chunk in 1..20 {
            assert_eq!(feed(&input, chunk), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn scan_resumes_where_it_stopped() {
        let mut codec = HttpCodec::new(256, 0);
        assert_eq!(codec.decode(&GET[..GET.len() - 1]), Ok(Decode::NeedMore));
        assert_eq!(codec.scanned, GET.len() - 1);
        assert!(matches!(codec.decode(GET), Ok(Decode::Done { .. })));
        assert_eq!(codec.scanned, 0);
    }

    #[test]
    fn head_only() {
        let mut codec = HttpCodec::new(256, 0);
        let src = [GET, b"\x81\x80"].concat();
        let Ok(Decode::Done { item, consumed }) = codec.decode_head(&src) else {
            panic!()
        };
        assert_eq!((consumed, item.body.len()), (GET.len(), 0));
        let with_body = b"GET / HTTP/1.1\r\nContent-Length: 99\r\n\r\n";
        assert!(matches!(
            codec.decode_head(with_body),
            Ok(Decode::Done { .. })
        ));
    }

    #[test]
    fn head_limit_at_and_past_boundary() {
        let n = GET.len();
        assert!(matches!(
            HttpCodec::new(n, 0).decode(GET),
            Ok(Decode::Done { .. })
        ));
        let err = Err(HttpError::HeadTooLarge { max: n - 1 });
        assert_eq!(HttpCodec::new(n - 1, 0).decode(GET), err);
        // Without a blank line, refused as soon as the limit is passed.
        assert_eq!(
            HttpCodec::new(n - 1, 0).decode(&GET[..n - 1]),
            Ok(Decode::NeedMore)
        );
        assert_eq!(
            HttpCodec::new(n - 3, 0).decode(&GET[..n - 2]),
            Err(HttpError::HeadTooLarge { max: n - 3 })
        );
    }

    #[test]
    fn body_limit_at_and_past_boundary() {
        assert!(matches!(
            HttpCodec::new(256, 5).decode(POST),
            Ok(Decode::Done { .. })
        ));
        let head = &POST[..POST.len() - 5];
        let err = Err(HttpError::BodyTooLarge { len: 5, max: 4 });
        assert_eq!(
            HttpCodec::new(256, 4).decode(head),
            err,
            "refused before the body"
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            decode(b"GET / HTTP/2.0\r\n\r\n"),
            Err(HttpError::Parse(httparse::Error::Version))
        );
        assert_eq!(
            decode(&[b'\n'; 12]),
            Err(HttpError::Parse(httparse::Error::NewLine))
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        let err = Err(HttpError::Parse(httparse::Error::TooManyHeaders));
        assert_eq!(HttpCodec::new(4096, 0).decode(many.as_bytes()), err);
    }

    #[test]
    fn content_length_rules() {
        let cl = |v: &str| decode(format!("POST / HTTP/1.1\r\n{v}\r\n\r\nabc").as_bytes());
        let Ok(Decode::Done { item, .. }) = cl("Content-Length: 3\r\ncontent-length: 3") else {
            panic!("equal duplicates are fine")
        };
        assert_eq!(item.body, b"abc");
        for bad in ["+3", "-3", "3 3", "0x3", "", "3,3"] {
            assert_eq!(
                cl(&format!("Content-Length: {bad}")),
                Err(HttpError::BadContentLength),
                "{bad:?}"
            );
        }
        assert_eq!(
            cl("Content-Length: 3\r\nContent-Length: 4"),
            Err(HttpError::BadContentLength)
        );
        let huge = Err(HttpError::BodyTooLarge {
            len: u64::MAX,
            max: 16,
        });
        assert_eq!(cl("Content-Length: 99999999999999999999999"), huge);
        assert_eq!(
            cl("Transfer-Encoding: chunked"),
            Err(HttpError::TransferEncoding)
        );
    }

    #[test]
    fn error_statuses() {
        assert_eq!(HttpError::Parse(httparse::Error::Token).status(), 400);
        assert_eq!(HttpError::HeadTooLarge { max: 1 }.status(), 431);
        assert_eq!(HttpError::BodyTooLarge { len: 2, max: 1 }.status(), 413);
        assert_eq!(HttpError::BadContentLength.status(), 400);
        assert_eq!(HttpError::TransferEncoding.status(), 501);
    }

    #[test]
    fn request_helpers() {
        let r = req(b"GET /a/b?x=1&q=a%2Bb+c%&bad=%zz%4&=e&empty HTTP/1.1\r\nCONNECTION: Upgrade, close\r\n\r\n");
        assert_eq!(
            (r.path(), r.query()),
            ("/a/b", Some("x=1&q=a%2Bb+c%&bad=%zz%4&=e&empty"))
        );
        assert_eq!(r.query_param("q").as_deref(), Some("a+b c%"));
        assert_eq!(r.query_param("bad").as_deref(), Some("%zz%4"));
        assert_eq!(r.query_param("empty").as_deref(), Some(""));
        assert_eq!(r.query_param("").as_deref(), Some("e"));
        assert_eq!(r.query_param("nope"), None);
        assert_eq!(r.header("connection"), Some(&b"Upgrade, close"[..]));
        assert!(r.connection_has("upgrade") && !r.keep_alive());
        assert_eq!(req(GET).query_param("msg").as_deref(), Some("hi there you"));
        assert!(req(GET).keep_alive() && !req(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(
            req(b"GET / HTTP/1.0\r\nConnection: a\r\nConnection: Keep-Alive\r\n\r\n").keep_alive()
        );
        assert_eq!(req(b"GET / HTTP/1.1\r\n\r\n").query(), None);
    }

    #[test]
    fn response_golden_bytes() {
        let mut out = Vec::new();
        Response::new(200)
            .header("Content-Type", "text/plain")
            .header("content-length", "99")
            .body("ok")
            .encode(&mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
        );
        out.clear();
        Response::new(204)
            .header("X-A", "1\r\nX-B: 2")
            .encode(&mut out);
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\nX-A: 1  X-B: 2\r\n\r\n");
        out.clear();
        Response::new(599).encode(&mut out);
        assert_eq!(out, b"HTTP/1.1 599 Unknown\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
    }
}
