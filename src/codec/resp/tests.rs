use super::*;
use crate::codec::{test_util::feed, Decode};

fn dec() -> RespDecoder {
    RespDecoder::new(RespLimits::default())
}

fn one(bytes: &[u8]) -> Result<Decode<Value>, RespError> {
    dec().decode(bytes)
}

fn done(item: Value, consumed: usize) -> Result<Decode<Value>, RespError> {
    Ok(Decode::Done { item, consumed })
}

fn bulk(s: &str) -> Value {
    Value::Bulk(s.as_bytes().to_vec())
}

#[test]
fn every_type_from_the_spec() {
    assert_eq!(one(b"+OK\r\n"), done(Value::Simple("OK".into()), 5));
    assert_eq!(
        one(b"-ERR unknown command\r\n"),
        done(Value::Error("ERR unknown command".into()), 22)
    );
    assert_eq!(one(b":1000\r\n"), done(Value::Integer(1000), 7));
    assert_eq!(one(b":-42\r\n"), done(Value::Integer(-42), 6));
    assert_eq!(one(b"$5\r\nhello\r\n"), done(bulk("hello"), 11));
    assert_eq!(one(b"$0\r\n\r\n"), done(bulk(""), 6));
    assert_eq!(one(b"$-1\r\n"), done(Value::Nil, 5));
    assert_eq!(one(b"*-1\r\n"), done(Value::Nil, 5));
    assert_eq!(one(b"*0\r\n"), done(Value::Array(vec![]), 4));
}

#[test]
fn nested_arrays_and_a_pubsub_message() {
    let msg = b"*3\r\n$7\r\nmessage\r\n$6\r\nnode:a\r\n$5\r\nhello\r\n";
    assert_eq!(
        one(msg),
        done(
            Value::Array(vec![bulk("message"), bulk("node:a"), bulk("hello")]),
            msg.len()
        )
    );
    let nested = b"*2\r\n*2\r\n:1\r\n*0\r\n$-1\r\n";
    assert_eq!(
        one(nested),
        done(
            Value::Array(vec![
                Value::Array(vec![Value::Integer(1), Value::Array(vec![])]),
                Value::Nil
            ]),
            nested.len()
        )
    );
}

#[test]
fn binary_bulk_may_hold_crlf() {
    assert_eq!(one(b"$4\r\n\r\n\r\n\r\n"), done(bulk("\r\n\r\n"), 10));
}

#[test]
fn every_prefix_needs_more_and_bytewise_equals_whole() {
    let input = b"+OK\r\n*2\r\n$3\r\nfoo\r\n*1\r\n:7\r\n$-1\r\n-ERR x\r\n";
    for i in 0..5 {
        assert_eq!(one(&input[..i]), Ok(Decode::NeedMore), "prefix {i}");
    }
    let (whole, err) = feed(input, input.len(), |b| dec().decode(b));
    assert_eq!(err, None);
    assert_eq!(whole.len(), 4);
    for chunk in 1..8 {
        let mut d = dec();
        let (items, err) = feed(input, chunk, |b| d.decode(b));
        assert_eq!((&items, err), (&whole, None), "chunk {chunk}");
    }
}

#[test]
fn a_large_bulk_is_not_rescanned_per_read() {
    let mut d = dec();
    let mut input = b"$100000\r\n".to_vec();
    assert_eq!(d.decode(&input), Ok(Decode::NeedMore));
    assert_eq!(d.need, 100_000 + 9 + 2);
    input.extend(std::iter::repeat(b'x').take(100_000));
    assert_eq!(d.decode(&input), Ok(Decode::NeedMore));
    input.extend_from_slice(b"\r\n");
    assert!(
        matches!(d.decode(&input), Ok(Decode::Done { consumed, .. }) if consumed == input.len())
    );
}

#[test]
fn one_error_per_variant() {
    assert_eq!(one(b"?x\r\n"), Err(RespError::BadType(b'?')));
    assert_eq!(one(b"+OK\n"), Err(RespError::BadLineEnd));
    assert_eq!(one(b"+O\rK\r\n"), Err(RespError::BadLineEnd));
    assert_eq!(one(b"+OK\rx"), Err(RespError::BadLineEnd));
    assert_eq!(one(b"$3\r\nabcde\r\n"), Err(RespError::BadLineEnd));
    assert_eq!(one(b":12a\r\n"), Err(RespError::BadInteger));
    assert_eq!(one(b":\r\n"), Err(RespError::BadInteger));
    assert_eq!(
        one(b":99999999999999999999\r\n"),
        Err(RespError::BadInteger)
    );
    assert_eq!(one(b"$-2\r\n"), Err(RespError::BadLength));
    assert_eq!(one(b"+\xff\r\n"), Err(RespError::BadUtf8));
    let small = RespLimits {
        max_bulk: 4,
        max_elements: 2,
        max_depth: 2,
        max_line: 8,
    };
    let mut d = RespDecoder::new(small);
    assert_eq!(d.decode(b"$5\r\n"), Err(RespError::BulkTooLarge));
    assert_eq!(d.decode(b"*3\r\n"), Err(RespError::TooManyElements));
    assert_eq!(d.decode(b"*1\r\n*1\r\n*1\r\n"), Err(RespError::TooDeep));
    assert_eq!(d.decode(b"+123456789"), Err(RespError::LineTooLong));
    // Announced lengths never reserve memory by themselves.
    assert_eq!(
        one(b"$9223372036854775807\r\n"),
        Err(RespError::BulkTooLarge)
    );
    assert_eq!(one(b"*1048577\r\n"), Err(RespError::TooManyElements));
    assert_eq!(one(b"*1048576\r\n"), Ok(Decode::NeedMore));
}

#[test]
fn encoded_commands_decode_back_as_arrays_of_bulks() {
    let mut out = Vec::new();
    encode_command(&["SET", "k", "a\r\nb"], &mut out);
    CommandBuf::new("PING").encode(&mut out);
    let (items, err) = feed(&out, 3, |b| dec().decode(b));
    assert_eq!(err, None);
    assert_eq!(
        items,
        vec![
            Value::Array(vec![bulk("SET"), bulk("k"), bulk("a\r\nb")]),
            Value::Array(vec![bulk("PING")]),
        ]
    );
}
