//! Provider credentials: upsert, read, list, delete, the change feed, and sealing.

use tollgate_store::{
    Change, DEFAULT_CREDENTIAL_OWNER, EntityKind, GITHUB_COPILOT_PROVIDER, NewCredential,
    SecretBox, credential_id, key_credential_owner, split_credential_id,
};

use crate::fixtures::{assert_invalid, now};
use crate::harness::backend_tests;

fn credential(owner: &str, label: &str, bytes: &[u8]) -> NewCredential {
    NewCredential {
        provider: GITHUB_COPILOT_PROVIDER.into(),
        owner: owner.into(),
        label: Some(label.into()),
        ciphertext: bytes.to_vec(),
        nonce: vec![7; 12],
    }
}

fn credential_changes(changes: &[Change]) -> Vec<&str> {
    changes.iter().filter(|c| c.kind == EntityKind::Credential).map(|c| c.id.as_str()).collect()
}

backend_tests!(credential_upsert_get_list_delete, async |store| {
    let before = now();
    let first =
        store.put_credential(credential("default", "octocat", b"\x00\x01ct")).await.unwrap();
    assert_eq!(first.provider, "github_copilot");
    assert_eq!(first.owner, "default");
    assert_eq!(first.label.as_deref(), Some("octocat"));
    assert_eq!(first.ciphertext, b"\x00\x01ct");
    assert_eq!(first.nonce, vec![7; 12]);
    assert!(first.created_at >= before);
    assert_eq!(first.created_at, first.updated_at);
    assert_eq!(
        store.get_credential("github_copilot", "default").await.unwrap(),
        Some(first.clone())
    );

    // Upsert by (provider, owner): the row is replaced, its creation time kept.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut replacement = credential("default", "hubot", b"new bytes");
    replacement.nonce = vec![9; 12];
    let second = store.put_credential(replacement).await.unwrap();
    assert_eq!(second.created_at, first.created_at);
    assert!(second.updated_at > first.updated_at);
    assert_eq!(second.label.as_deref(), Some("hubot"));
    assert_eq!(second.ciphertext, b"new bytes");
    assert_eq!(second.nonce, vec![9; 12]);
    assert_eq!(store.get_credential("github_copilot", "default").await.unwrap(), Some(second));

    let owner = key_credential_owner("abc123");
    let mut own = credential(&owner, "", b"k");
    own.label = None;
    store.put_credential(own).await.unwrap();
    let mut other = credential("default", "x", b"o");
    other.provider = "other_provider".into();
    store.put_credential(other).await.unwrap();

    let listed = store.list_credentials("github_copilot").await.unwrap();
    let owners: Vec<_> = listed.iter().map(|c| c.owner.as_str()).collect();
    assert_eq!(owners, ["default", "key:abc123"]);
    assert_eq!(listed[1].label, None);
    assert!(store.list_credentials("nobody").await.unwrap().is_empty());
    assert_eq!(store.get_credential("github_copilot", "key:missing").await.unwrap(), None);

    assert!(store.delete_credential("github_copilot", "default").await.unwrap());
    assert!(!store.delete_credential("github_copilot", "default").await.unwrap());
    assert_eq!(store.get_credential("github_copilot", "default").await.unwrap(), None);
    assert_eq!(
        store.get_credential("other_provider", "default").await.unwrap().unwrap().owner,
        "default"
    );
});

backend_tests!(credential_changes_feed_other_processes, async |store| {
    let start = store.latest_change().await.unwrap();
    store.put_credential(credential(DEFAULT_CREDENTIAL_OWNER, "a", b"1")).await.unwrap();
    store.put_credential(credential(DEFAULT_CREDENTIAL_OWNER, "b", b"2")).await.unwrap();
    store.put_credential(credential("key:h1", "c", b"3")).await.unwrap();
    store.delete_credential("github_copilot", "key:h1").await.unwrap();
    // Deleting what is not there changes nothing.
    store.delete_credential("github_copilot", "key:h1").await.unwrap();
    store.get_credential("github_copilot", "default").await.unwrap();
    store.list_credentials("github_copilot").await.unwrap();

    let changes = store.changes_since(start, 100).await.unwrap();
    assert_eq!(
        credential_changes(&changes),
        [
            "github_copilot/default",
            "github_copilot/default",
            "github_copilot/key:h1",
            "github_copilot/key:h1"
        ]
    );
    assert_eq!(changes.len(), 4);
    assert_eq!(split_credential_id(&changes[2].id), Some(("github_copilot", "key:h1")));
    assert_eq!(credential_id("github_copilot", "default"), "github_copilot/default");
});

backend_tests!(credentials_are_validated, async |store| {
    let mut slash = credential("default", "x", b"1");
    slash.provider = "a/b".into();
    assert_invalid(store.put_credential(slash).await);
    assert_invalid(store.put_credential(credential(" ", "x", b"1")).await);
    assert_invalid(store.put_credential(credential("default", "x", b"")).await);
    let mut no_nonce = credential("default", "x", b"1");
    no_nonce.nonce.clear();
    assert_invalid(store.put_credential(no_nonce).await);
    assert!(store.list_credentials("github_copilot").await.unwrap().is_empty());
    assert_eq!(store.latest_change().await.unwrap(), 0);
});

backend_tests!(sealed_credentials_round_trip_and_stay_bound_to_their_owner, async |store, db| {
    let sb = SecretBox::from_env_value("conformance secret key value").unwrap();
    let sealed = sb
        .seal_credential("github_copilot", "default", Some("octocat".into()), "ghu_plaintext")
        .unwrap();
    store.put_credential(sealed.clone()).await.unwrap();
    let stored = store.get_credential("github_copilot", "default").await.unwrap().unwrap();
    assert_ne!(stored.ciphertext, b"ghu_plaintext");
    assert_eq!(sb.open_credential(&stored).unwrap(), "ghu_plaintext");
    let hits = db
        .scalar(
            "SELECT COUNT(*) FROM provider_credentials \
             WHERE CAST(label AS TEXT) LIKE '%ghu_%' OR CAST(owner AS TEXT) LIKE '%ghu_%'",
        )
        .await;
    assert_eq!(hits, 0);

    // The same ciphertext moved onto another owner does not open.
    store.put_credential(NewCredential { owner: "key:someone".into(), ..sealed }).await.unwrap();
    let moved = store.get_credential("github_copilot", "key:someone").await.unwrap().unwrap();
    assert!(sb.open_credential(&moved).is_err());
    // Another secret key cannot open it, and says why.
    let err = SecretBox::from_env_value("a different secret key")
        .unwrap()
        .open_credential(&stored)
        .unwrap_err();
    assert!(err.to_string().contains("secret key changed"), "{err}");
});
