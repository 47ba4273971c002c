//! HTTP/1.x: requests decoded from bytes (the head by `httparse`, then a `Content-Length`
//! body) and responses encoded to bytes.

mod decode;
mod error;
mod request;
mod response;

pub use decode::HttpCodec;
pub use error::HttpError;
pub use request::Request;
pub use response::{reason_phrase, Response};

/// Most headers a request may carry.
pub const MAX_HEADERS: usize = 64;

#[cfg(test)]
mod tests;
