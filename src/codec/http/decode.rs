//! The request decoder: the head parsed by `httparse`, then a `Content-Length` body.

use super::{HttpError, Request, MAX_HEADERS};
use crate::codec::Decode;

/// Decodes requests, remembering how far it has scanned for the end of the head.
#[derive(Debug, Clone)]
pub struct HttpCodec {
    /// Largest head accepted (request line and headers), in bytes.
    max_head: usize,
    /// Largest body accepted, in bytes.
    max_body: usize,
    /// Bytes of the pending input already known not to end the head.
    pub(super) scanned: usize,
    /// A parsed head whose body has not fully arrived, kept so that a slowly sent body does
    /// not make us re-parse the head on every read. Boxed: a request is large and rarely
    /// waits, and the codec sits in every connection's slot.
    pending: Option<Box<Pending>>,
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
            Some(pending) => *pending,
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
                self.pending = Some(Box::new(pending));
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
