use super::*;
use crate::codec::Decode;

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
    assert!(req(b"GET / HTTP/1.0\r\nConnection: a\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
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
