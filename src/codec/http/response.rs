//! The response encoder.

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
