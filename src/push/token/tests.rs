//! Unit tests for client tokens.

use super::*;

const SECRET: &[u8] = b"pushman-secret";
const EXP: u64 = 1_700_000_000;

/// Computed with Python's `hmac`/`hashlib`/`base64` (the same bytes as PHP's
/// `hash_hmac('sha256', $uid."\n".$exp, $secret)`).
const VECTORS: [(&str, &str); 3] = [
    (
        "user-42",
        "dXNlci00Mg.1700000000.0479d7b5f72b2585ad2a7e8f5b1f99e4107680ae6f9522b1bda6c88612b151c9",
    ),
    (
        ">>>?",
        "Pj4-Pw.1700000000.366690674899787c30325b87f38b6d35d1cabc68dfe9fde2e26bfb8c3dbef68d",
    ),
    (
        "ü?~",
        "w7w_fg.1700000000.b65a52ba85fe746a9a534b26f782fce13f5d7bcd04b02ac40d645b565fd52132",
    ),
];

#[test]
fn known_vectors() {
    for (uid, token) in VECTORS {
        assert_eq!(mint(SECRET, uid, EXP), token);
        assert_eq!(verify(SECRET, token, EXP - 1).as_deref(), Ok(uid));
    }
}

#[test]
fn round_trip() {
    let token = mint(b"k", "alice", 100);
    assert_eq!(verify(b"k", &token, 0), Ok("alice".to_owned()));
    assert_eq!(verify(b"k", &token, 99), Ok("alice".to_owned()));
    // Any key length works, including empty and longer than a SHA-256 block.
    for key in [&b""[..], &[7u8; 200][..]] {
        let token = mint(key, "bob", 10);
        assert_eq!(verify(key, &token, 5), Ok("bob".to_owned()));
    }
}

#[test]
fn expired_at_and_after_expiry() {
    let token = mint(SECRET, "alice", 100);
    assert_eq!(verify(SECRET, &token, 100), Err(TokenError::Expired));
    assert_eq!(verify(SECRET, &token, u64::MAX), Err(TokenError::Expired));
}

#[test]
fn forged_signature() {
    let token = mint(SECRET, "alice", 100);
    assert_eq!(verify(b"other", &token, 0), Err(TokenError::BadSignature));
    // Another uid or expiry under the original signature.
    let sig = token.rsplit('.').next().unwrap_or_default();
    let other_uid = format!("{}.100.{sig}", URL_SAFE_NO_PAD.encode("admin"));
    assert_eq!(verify(SECRET, &other_uid, 0), Err(TokenError::BadSignature));
    let later = format!("YWxpY2U.200.{sig}");
    assert_eq!(verify(SECRET, &later, 0), Err(TokenError::BadSignature));
    // One flipped hex digit.
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap_or_default();
    assert_eq!(verify(SECRET, &flipped, 0), Err(TokenError::BadSignature));
    // A forged token is BadSignature even when also expired.
    assert_eq!(verify(b"other", &token, 500), Err(TokenError::BadSignature));
}

#[test]
fn malformed() {
    let good = mint(SECRET, "alice", 100);
    let sig = good.rsplit('.').next().unwrap_or_default().to_owned();
    let cases = [
        String::new(),
        "abc".to_owned(),
        "YWxpY2U.100".to_owned(),
        format!("{good}.extra"),
        format!(".100.{sig}"),         // empty uid
        format!("YWxpY2U=.100.{sig}"), // padding
        format!("YWxp*2U.100.{sig}"),  // not base64url
        format!("YWxpY2U+.100.{sig}"), // standard, not url-safe, alphabet
        format!("{}.100.{sig}", URL_SAFE_NO_PAD.encode([0xff, 0xfe])), // not UTF-8
        format!("YWxpY2U..{sig}"),     // empty expiry
        format!("YWxpY2U.+100.{sig}"), // sign
        format!("YWxpY2U.-1.{sig}"),
        format!("YWxpY2U.1e3.{sig}"),
        format!("YWxpY2U.99999999999999999999.{sig}"), // overflows u64
        format!("YWxpY2U.100.{}", &sig[..62]),         // short tag
        format!("YWxpY2U.100.{sig}00"),                // long tag
        format!("YWxpY2U.100.{}", sig.to_uppercase()),
        format!("YWxpY2U.100.{}g", &sig[..63]),
        format!("{}.100.{sig}", "A".repeat(MAX_TOKEN_LEN)), // too long
    ];
    for case in &cases {
        assert_eq!(
            verify(SECRET, case, 0),
            Err(TokenError::Malformed),
            "{case:?}"
        );
    }
}

#[test]
fn display() {
    assert_eq!(TokenError::Malformed.to_string(), "malformed token");
    assert_eq!(TokenError::BadSignature.to_string(), "bad token signature");
    assert_eq!(TokenError::Expired.to_string(), "token expired");
}

#[test]
fn length_limit_is_inclusive() {
    let uid = "u".repeat(711);
    let token = mint(SECRET, &uid, EXP);
    assert_eq!(token.len(), MAX_TOKEN_LEN);
    assert_eq!(verify(SECRET, &token, 0), Ok(uid.clone()));
    let token = mint(SECRET, &format!("{uid}uuu"), EXP);
    assert_eq!(verify(SECRET, &token, 0), Err(TokenError::Malformed));
}
