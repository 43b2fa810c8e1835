//! MCP sessions (`Mcp-Session-Id`) that any replica accepts: the id is the protocol revision
//! the client and tollgate agreed on at `initialize`, sealed with the secret key every replica
//! shares and bound to the caller's credential. Nothing is kept per session — upstream
//! connections are shared by every caller — so no replica needs to have seen the
//! `initialize` a session began with, and a session id copied to another key does not open.

use tollgate_store::SecretBox;

/// What a session id carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Session {
    /// The protocol revision agreed on.
    #[serde(rename = "v")]
    pub version: String,
}

fn associated(caller: &str) -> Vec<u8> {
    format!("tollgate mcp session/{caller}").into_bytes()
}

/// A new session id for `caller` (an identity of its credential, never the credential).
pub(super) fn issue(secret_box: &SecretBox, caller: &str, session: &Session) -> Option<String> {
    let payload = serde_json::to_vec(session).ok()?;
    let (sealed, nonce) = secret_box.seal(&payload, &associated(caller)).ok()?;
    Some(format!("{}{}", hex::encode(nonce), hex::encode(sealed)))
}

/// The session `id` stands for, if it was issued to `caller` with this secret key.
pub(super) fn open(secret_box: &SecretBox, caller: &str, id: &str) -> Option<Session> {
    let bytes = hex::decode(id).ok()?;
    if bytes.len() <= 12 {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(12);
    let payload = secret_box.open(sealed, nonce, &associated(caller)).ok()?;
    serde_json::from_slice(&payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_opens_for_its_caller_only() {
        let one = SecretBox::from_env_value("replica secret shared by all").unwrap();
        let session = Session { version: "2025-06-18".into() };
        let id = issue(&one, "key:abc", &session).unwrap();
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        // Another replica with the same secret accepts it.
        let other = SecretBox::from_env_value("replica secret shared by all").unwrap();
        assert_eq!(open(&other, "key:abc", &id), Some(session));
        assert_eq!(open(&other, "key:def", &id), None);
        let stranger = SecretBox::from_env_value("another deployment's secret").unwrap();
        assert_eq!(open(&stranger, "key:abc", &id), None);
        assert_eq!(open(&one, "key:abc", "not-hex"), None);
        assert_eq!(open(&one, "key:abc", "00ff"), None);
    }
}
