//! The change feed.

use tollgate_store::{Change, EntityKind, KeyPatch, NewTeam};

use crate::fixtures::{at, key, member, owned_record, team, user};
use crate::harness::backend_tests;

fn entries(changes: &[Change]) -> Vec<(EntityKind, &str)> {
    changes.iter().map(|c| (c.kind, c.id.as_str())).collect()
}

backend_tests!(change_feed_order, async |store| {
    use EntityKind::{Key, Team, User};
    assert_eq!(store.latest_change().await.unwrap(), 0);
    assert!(store.changes_since(0, 0).await.unwrap().is_empty());

    store.create_user(user("u1")).await.unwrap();
    store
        .create_team(NewTeam {
            members: vec![member("u1", "admin"), member("u2", "user")],
            ..team("t1")
        })
        .await
        .unwrap();
    let mut k = key("k1");
    k.user_id = Some("u3".into());
    k.team_id = Some("t1".into());
    store.create_key(k).await.unwrap();
    let after_create = store.latest_change().await.unwrap();

    // Spend never feeds changes, even when it moves spend on keys, users and teams.
    let spend = owned_record("r1", at("2026-03-10T00:00:00Z"), "k1", "u3", "t1");
    assert_eq!(store.insert_spend(&[spend]).await.unwrap(), 1);
    assert_eq!(store.latest_change().await.unwrap(), after_create);

    store.update_key("k1", KeyPatch { blocked: Some(true), ..KeyPatch::default() }).await.unwrap();
    store.regenerate_key("k1", "k2", "sk-...k2").await.unwrap();
    store.remove_team_members("t1", &["u2".into()]).await.unwrap();
    store.delete_users(&["u3".into()]).await.unwrap();
    store.delete_keys(&["k2".into()]).await.unwrap();
    store.delete_teams(&["t1".into()]).await.unwrap();

    let all = store.changes_since(0, 1000).await.unwrap();
    assert_eq!(
        entries(&all),
        [
            (User, "u1"),
            (Team, "t1"),
            (User, "u1"),
            (User, "u2"),
            (User, "u3"),
            (Key, "k1"),
            (Key, "k1"),
            (Key, "k1"),
            (Key, "k2"),
            (Team, "t1"),
            (User, "u2"),
            (Key, "k2"),
            (User, "u3"),
            (Key, "k2"),
            (User, "u1"),
            (Team, "t1"),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "strictly increasing");
    assert_eq!(store.latest_change().await.unwrap(), all.last().unwrap().seq);

    // Paging through the feed: after a seq, at most `limit`.
    let page = store.changes_since(all[4].seq, 3).await.unwrap();
    assert_eq!(page, all[5..8].to_vec());
    assert!(store.changes_since(all.last().unwrap().seq, 10).await.unwrap().is_empty());
});
