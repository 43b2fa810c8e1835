//! Virtual key values: generated, shown once, then known only by their SHA-256.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Characters of a generated key after `sk-`.
const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new random key: `sk-` and 40 alphanumerics (about 238 bits).
pub fn generate() -> String {
    let mut rng = rand::rng();
    let mut key = String::with_capacity(43);
    key.push_str("sk-");
    for _ in 0..40 {
        key.push(KEY_ALPHABET[rng.random_range(0..KEY_ALPHABET.len())] as char);
    }
    key
}

/// The hex SHA-256 of a key: how the store and the cache know it.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A form safe to show: `sk-...a1b2`.
pub fn display_name(key: &str) -> String {
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("sk-...{tail}")
}

/// Management calls name a key either by its value or by its hash, as LiteLLM's do.
pub fn to_hash(key_or_hash: &str) -> String {
    let s = key_or_hash.trim();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        s.to_owned()
    } else {
        hash(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_well_formed() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with("sk-") && a.len() == 43);
        assert!(a[3..].bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn hashes_and_names() {
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(to_hash("abc"), hash("abc"));
        assert_eq!(to_hash(&hash("abc")), hash("abc"));
        assert_eq!(display_name("sk-abcdefgh1234"), "sk-...1234");
    }
}
