//! The `/github` account-linking page in a real browser: headless Chromium driven by
//! playwright-core (`tests/browser/github_page.mjs`), against the GitHub stand-in.

use std::time::Duration;

use tollgate_testkit::MockGitHub;

use crate::support::*;

#[tokio::test]
#[ignore = "needs the Claude Code CLI and Chromium; scripts/test runs them"]
async fn the_github_page_shows_the_code_and_turns_linked_by_itself() {
    let (node, chromium, node_modules) = (node_bin(), chromium_bin(), node_modules());
    let gh = MockGitHub::start().await;
    let app = copilot_app(&gh, "").await;
    // Screenshots go to a temporary directory, or to $TOLLGATE_E2E_SCREENSHOTS to look at.
    let shots = tempfile::Builder::new().prefix("tollgate-e2e-shots-").tempdir().unwrap();
    let shots_dir = std::env::var_os("TOLLGATE_E2E_SCREENSHOTS")
        .map_or_else(|| shots.path().to_path_buf(), std::path::PathBuf::from);
    std::fs::create_dir_all(&shots_dir).unwrap();
    let script = repo_root().join("tests/browser/github_page.mjs");
    let url = app.auth_url(&format!("/github?key={MASTER}"));
    let mut page = spawn_lines(
        &node,
        &[script.to_str().unwrap(), &url, "--screenshots", shots_dir.to_str().unwrap()],
        &[("TOLLGATE_CHROMIUM", &chromium), ("TOLLGATE_NODE_MODULES", &node_modules)],
        Duration::from_secs(90),
    );

    let Some(code) = page.line_starting("CODE ", Duration::from_secs(60)).await else {
        panic!("the page never showed a code\n{}", page.finish().await);
    };
    assert_eq!(Some(code.clone()), gh.latest_user_code(), "the page shows the flow's code");
    assert_eq!(gh.flow_count(), 1, "one device flow for one page view");
    assert!(gh.approve_latest().is_some());

    let out = page.finish().await;
    assert!(out.success(), "{out}");
    let status = out.stdout.lines().find_map(|l| l.strip_prefix("STATUS ")).unwrap_or_default();
    assert!(status.starts_with("Linked"), "{out}");
    assert!(out.stdout.contains("PENDING Waiting for you to approve"), "{out}");
    for shot in ["pending.png", "linked.png"] {
        let bytes = std::fs::read(shots_dir.join(shot)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{shot} is a PNG");
    }
    // The linked account is the one tollgate now serves with.
    let copilot = app.state.providers().copilot();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while copilot.account_for(Some("default")).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the proxy never picked the account up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
