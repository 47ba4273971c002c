//! Client tokens: a uid and an expiry signed with HMAC-SHA256 under a secret shared with the
//! backend, so a browser can prove who it is without the push server calling the backend.
//!
//! # Format
//!
//! ```text
//! token = base64url_nopad(uid) "." expires "." hex_lowercase(HMAC_SHA256(secret, uid "\n" expires))
//! ```
//!
//! `expires` is unix seconds in decimal. A PHP backend mints one with
//!
//! ```php
//! $exp = time() + 3600;
//! $token = rtrim(strtr(base64_encode($uid), '+/', '-_'), '=') . "." . $exp . "."
//!        . hash_hmac('sha256', $uid . "\n" . $exp, $secret);
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use std::fmt;

/// Longest token [`verify`] looks at; longer ones are refused before any decoding work.
pub const MAX_TOKEN_LEN: usize = 1024;

/// Hex digits of an HMAC-SHA256 tag.
const TAG_HEX_LEN: usize = 64;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not `uid.expires.signature`: wrong shape, bad base64url, empty or non-UTF-8 uid,
    /// non-decimal expiry, signature not 64 lowercase hex digits, or over [`MAX_TOKEN_LEN`].
    Malformed,
    /// Well-formed, but the signature does not match: forged, or minted under another secret.
    BadSignature,
    /// Genuine, but `now` is at or past its expiry.
    Expired,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed token",
            Self::BadSignature => "bad token signature",
            Self::Expired => "token expired",
        })
    }
}

impl std::error::Error for TokenError {}

/// Mints a token for `uid`, valid until `expires` (unix seconds).
pub fn mint(secret: &[u8], uid: &str, expires: u64) -> String {
    let expires = expires.to_string();
    let tag = mac(secret, uid.as_bytes(), &expires)
        .finalize()
        .into_bytes();
    let mut token = URL_SAFE_NO_PAD.encode(uid);
    token.push('.');
    token.push_str(&expires);
    token.push('.');
    for byte in tag {
        token.push(char::from(HEX[usize::from(byte >> 4)]));
        token.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    token
}

/// Checks `token` against `secret` at time `now` (unix seconds); returns its uid.
///
/// The signature is checked before the expiry, so `Expired` is only reported for genuine
/// tokens, and it is compared in constant time.
///
/// # Errors
/// [`TokenError`]: see its variants.
pub fn verify(secret: &[u8], token: &str, now: u64) -> Result<String, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(uid_b64), Some(expires), Some(tag_hex), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let uid = URL_SAFE_NO_PAD
        .decode(uid_b64)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|uid| !uid.is_empty())
        .ok_or(TokenError::Malformed)?;
    // Digits only: `u64::from_str` would also take a leading `+`, which no minter writes.
    if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Malformed);
    }
    let expires_at: u64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let tag = decode_hex(tag_hex).ok_or(TokenError::Malformed)?;
    // The MAC covers `expires` as written, so the check needs no canonical re-encoding.
    mac(secret, uid.as_bytes(), expires)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    if now >= expires_at {
        return Err(TokenError::Expired);
    }
    Ok(uid)
}

/// The HMAC state after absorbing `uid "\n" expires`.
fn mac(secret: &[u8], uid: &[u8], expires: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length (RFC 2104 §2: longer keys are hashed first), so this
    // cannot fail whatever the configured secret is.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(uid);
    mac.update(b"\n");
    mac.update(expires.as_bytes());
    mac
}

/// Lowercase hex digits, as PHP's `hash_hmac` writes them.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Decodes exactly [`TAG_HEX_LEN`] lowercase hex digits; uppercase is refused so each tag
/// has one spelling.
fn decode_hex(hex: &str) -> Option<[u8; TAG_HEX_LEN / 2]> {
    if hex.len() != TAG_HEX_LEN {
        return None;
    }
    let mut out = [0u8; TAG_HEX_LEN / 2];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// The value of one lowercase hex digit.
fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
