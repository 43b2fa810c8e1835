//! `tollgate auth-helper import`: reading LiteLLM's saved GitHub token and storing it sealed.

// Tests may unwrap and panic: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tollgate_auth::{find_litellm_token, import_token};
use tollgate_config::MapEnv;
use tollgate_store::SecretBox;

#[tokio::test]
async fn a_litellm_token_file_is_found_and_imported_sealed() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/litellm/github_copilot");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("access-token"), "ghu_litellm_token\n").unwrap();

    // LiteLLM's default location under HOME.
    let env = MapEnv::from_pairs([("HOME", home.path().to_str().unwrap())]);
    let (path, token) = find_litellm_token(&env).unwrap();
    assert_eq!(path, dir.join("access-token"));
    assert_eq!(token.expose(), "ghu_litellm_token");

    // Or wherever GITHUB_COPILOT_TOKEN_DIR / GITHUB_COPILOT_ACCESS_TOKEN_FILE say.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("gh.token"), "ghu_elsewhere").unwrap();
    let env = MapEnv::from_pairs([
        ("GITHUB_COPILOT_TOKEN_DIR", other.path().to_str().unwrap()),
        ("GITHUB_COPILOT_ACCESS_TOKEN_FILE", "gh.token"),
    ]);
    assert_eq!(find_litellm_token(&env).unwrap().1.expose(), "ghu_elsewhere");
    assert!(find_litellm_token(&MapEnv::from_pairs([("HOME", "/nonexistent")])).is_none());

    let data = tempfile::tempdir().unwrap();
    let store = tollgate_store::connect(None, data.path()).await.unwrap();
    store.migrate().await.unwrap();
    let secret_box = SecretBox::load_or_create(None, data.path()).unwrap();
    let record = import_token(store.as_ref(), &secret_box, "default", &token, "cli").await.unwrap();
    assert_eq!((record.provider.as_str(), record.owner.as_str()), ("github_copilot", "default"));
    assert_eq!(record.label, None);
    assert_ne!(record.ciphertext, b"ghu_litellm_token");
    let stored = store.get_credential("github_copilot", "default").await.unwrap().unwrap();
    assert_eq!(secret_box.open_credential(&stored).unwrap(), "ghu_litellm_token");

    // The import is audited as the CLI's link, without the token.
    let logs = store.audit_logs(tollgate_store::AuditFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let entry = &logs[0];
    assert_eq!(
        (entry.actor.as_str(), entry.action.as_str(), entry.object_type.as_str()),
        ("cli", "link", "linked_account")
    );
    assert_eq!(entry.object_id, "default");
    assert_eq!(entry.after, Some(serde_json::json!({"login": null})));
    assert!(!serde_json::to_string(&logs).unwrap().contains("ghu_litellm_token"));
}
