//! Callback signatures: `Runwarm-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
//! with `Runwarm-Timestamp: <unix seconds>`. The timestamp is inside the signed material, so a
//! receiver that refuses old timestamps also refuses a captured delivery sent again; each
//! attempt is signed afresh. The secret is used as the bytes of its text (what the receiver
//! holds), not hex-decoded, so verifying takes no decoding step.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The signature header value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The secret header callbacks of `uid` are signed with: HMAC-SHA256 of `uid:<uid>` under the
/// daemon's key, hex. Derived, not stored, so there is nothing per caller to keep or lose;
/// `GET /v1/callbacks/secret` hands each caller its own.
pub fn caller_secret(key: &str, uid: u32) -> String {
    match HmacSha256::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(format!("uid:{uid}").as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// A new random subscription secret: 32 bytes from the kernel, hex.
pub fn new_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    super::getrandom_fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_a_known_vector() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("s3cret", 1_700_000_000, b"{}"),
            "v1=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
        );
        assert_ne!(signature("a", 1, b"x"), signature("a", 2, b"x"));
        assert_ne!(caller_secret("k", 1), caller_secret("k", 2));
        assert_eq!(caller_secret("k", 1).len(), 64);
    }
}
