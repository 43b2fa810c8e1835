//! Admin UI sessions and users' UI passwords: round trips, conflicts, touching, the deletions,
//! the expiry boundary, and what deleting a user takes with it.

use chrono::{DateTime, Duration, Utc};
use tollgate_store::{NewSession, Store};

use crate::fixtures::{assert_conflict, assert_invalid, assert_not_found, at, close_to, now, user};
use crate::harness::backend_tests;

/// A PHC string of the shape argon2 makes (the store never parses it).
const HASH_A: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
const HASH_B: &str = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNob3RoZXJoYXNo";

/// A session of `user_id` (or of the master key, without one) ending at `expires_at`.
fn session(hash: &str, user_id: Option<&str>, expires_at: DateTime<Utc>) -> NewSession {
    NewSession {
        session_hash: hash.to_owned(),
        subject: user_id.map_or_else(|| "master_key".to_owned(), |u| format!("user:{u}")),
        user_id: user_id.map(str::to_owned),
        role: if user_id.is_some() { "internal_user" } else { "proxy_admin" }.to_owned(),
        csrf_token: format!("csrf-{hash}"),
        expires_at,
    }
}

/// The hashes of the stored sessions among `hashes`.
async fn present(store: &Store, hashes: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for h in hashes {
        if let Some(s) = store.get_session(h).await.unwrap() {
            found.push(s.session_hash);
        }
    }
    found
}

backend_tests!(sessions_round_trip, async |store| {
    store.create_user(user("alice")).await.unwrap();
    let feed = store.latest_change().await.unwrap();
    let start = now();
    let expires = start + Duration::hours(8);
    let s = store.create_session(session("s1", Some("alice"), expires)).await.unwrap();
    assert_eq!(s.session_hash, "s1");
    assert_eq!(s.subject, "user:alice");
    assert_eq!(s.user_id.as_deref(), Some("alice"));
    assert_eq!(s.role, "internal_user");
    assert_eq!(s.csrf_token, "csrf-s1");
    assert_eq!(s.expires_at, expires);
    assert!(close_to(s.created_at, start) && s.created_at >= start);
    assert_eq!(s.last_seen_at, s.created_at);
    assert_eq!(store.get_session("s1").await.unwrap(), Some(s));

    let m = store.create_session(session("s2", None, start)).await.unwrap();
    assert_eq!((m.subject.as_str(), m.user_id), ("master_key", None));
    let expired = store.get_session("s2").await.unwrap().expect("expired sessions are returned");
    assert_eq!(expired.expires_at, start);
    assert_eq!(store.get_session("nope").await.unwrap(), None);
    assert_eq!(store.latest_change().await.unwrap(), feed, "sessions are not changes");
});

backend_tests!(sessions_conflict_and_refuse_bad_input, async |store| {
    let expires = now() + Duration::hours(1);
    store.create_session(session("s1", None, expires)).await.unwrap();
    let mut again = session("s1", None, expires);
    again.csrf_token = "other".into();
    assert_conflict(store.create_session(again).await, "session");
    assert_eq!(store.get_session("s1").await.unwrap().unwrap().csrf_token, "csrf-s1");

    assert_not_found(store.create_session(session("s2", Some("ghost"), expires)).await, "user");
    assert_eq!(store.get_session("s2").await.unwrap(), None);
    assert_invalid(store.create_session(session("", None, expires)).await);
    let mut no_csrf = session("s3", None, expires);
    no_csrf.csrf_token = String::new();
    assert_invalid(store.create_session(no_csrf).await);
});

backend_tests!(touching_a_session_extends_it, async |store| {
    let start = now();
    let created = store.create_session(session("s1", None, start + Duration::hours(1))).await;
    let created = created.unwrap();
    let seen = start + Duration::minutes(30);
    let until = seen + Duration::hours(1);
    assert!(store.touch_session("s1", seen, until).await.unwrap());
    let touched = store.get_session("s1").await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, seen);
    assert_eq!(touched.expires_at, until);
    assert_eq!(touched.created_at, created.created_at);
    assert_eq!(touched.csrf_token, created.csrf_token);
    assert!(!store.touch_session("nope", seen, until).await.unwrap());
    assert_eq!(store.get_session("nope").await.unwrap(), None, "touch creates nothing");
});

backend_tests!(sessions_are_deleted_one_by_one, async |store| {
    let expires = now() + Duration::hours(1);
    store.create_session(session("s1", None, expires)).await.unwrap();
    store.create_session(session("s2", None, expires)).await.unwrap();
    assert!(store.delete_session("s1").await.unwrap());
    assert!(!store.delete_session("s1").await.unwrap(), "a second delete finds nothing");
    assert_eq!(present(&store, &["s1", "s2"]).await, vec!["s2".to_owned()]);
});

backend_tests!(a_users_sessions_are_deleted_together, async |store| {
    store.create_user(user("alice")).await.unwrap();
    store.create_user(user("bob")).await.unwrap();
    let expires = now() + Duration::hours(1);
    store.create_session(session("a1", Some("alice"), expires)).await.unwrap();
    store.create_session(session("a2", Some("alice"), expires)).await.unwrap();
    store.create_session(session("b1", Some("bob"), expires)).await.unwrap();
    store.create_session(session("m1", None, expires)).await.unwrap();
    assert_eq!(store.delete_user_sessions("alice").await.unwrap(), 2);
    assert_eq!(store.delete_user_sessions("alice").await.unwrap(), 0);
    assert_eq!(store.delete_user_sessions("ghost").await.unwrap(), 0);
    let left = present(&store, &["a1", "a2", "b1", "m1"]).await;
    assert_eq!(left, vec!["b1".to_owned(), "m1".to_owned()]);
    assert!(store.get_user("alice").await.unwrap().is_some(), "the user stays");
});

backend_tests!(expired_sessions_are_deleted_up_to_and_including_now, async |store| {
    let t = at("2026-12-04T12:00:00.000001Z");
    let micro = Duration::microseconds(1);
    store.create_session(session("before", None, t - micro)).await.unwrap();
    store.create_session(session("at", None, t)).await.unwrap();
    store.create_session(session("after", None, t + micro)).await.unwrap();
    store.create_session(session("later", None, t + Duration::days(1))).await.unwrap();
    assert_eq!(store.delete_expired_sessions(t).await.unwrap(), 2);
    assert_eq!(store.delete_expired_sessions(t).await.unwrap(), 0);
    let left = present(&store, &["before", "at", "after", "later"]).await;
    assert_eq!(left, vec!["after".to_owned(), "later".to_owned()]);
});

backend_tests!(passwords_are_set_replaced_and_cleared, async |store| {
    store.create_user(user("alice")).await.unwrap();
    let feed = store.latest_change().await.unwrap();
    assert_eq!(store.password_hash("alice").await.unwrap(), None);
    store.set_password("alice", Some(HASH_A)).await.unwrap();
    assert_eq!(store.password_hash("alice").await.unwrap().as_deref(), Some(HASH_A));
    store.set_password("alice", Some(HASH_B)).await.unwrap();
    assert_eq!(store.password_hash("alice").await.unwrap().as_deref(), Some(HASH_B));

    let record = store.get_user("alice").await.unwrap().unwrap();
    let shown = serde_json::to_string(&record).unwrap();
    assert!(!shown.contains("argon2"), "a user record never carries the hash: {shown}");

    store.set_password("alice", None).await.unwrap();
    assert_eq!(store.password_hash("alice").await.unwrap(), None);
    store.set_password("alice", None).await.unwrap();
    assert_eq!(store.latest_change().await.unwrap(), feed, "passwords are not changes");
    assert_invalid(store.set_password("alice", Some("")).await);
});

backend_tests!(passwords_need_a_user, async |store| {
    assert_not_found(store.set_password("ghost", Some(HASH_A)).await, "user");
    assert_not_found(store.set_password("ghost", None).await, "user");
    assert_eq!(store.password_hash("ghost").await.unwrap(), None);
    assert_eq!(store.get_user("ghost").await.unwrap(), None, "no user is created");
});

backend_tests!(deleting_users_removes_their_passwords_and_sessions, async |store, db| {
    let expires = now() + Duration::hours(1);
    for u in ["alice", "carol", "bob"] {
        store.create_user(user(u)).await.unwrap();
        store.set_password(u, Some(HASH_A)).await.unwrap();
        store.create_session(session(&format!("{u}-1"), Some(u), expires)).await.unwrap();
    }
    store.create_session(session("alice-2", Some("alice"), expires)).await.unwrap();
    store.create_session(session("m1", None, expires)).await.unwrap();

    let gone = ["alice".to_owned(), "carol".to_owned(), "ghost".to_owned()];
    assert_eq!(store.delete_users(&gone).await.unwrap(), 2);
    assert_eq!(store.password_hash("alice").await.unwrap(), None);
    assert_eq!(store.password_hash("carol").await.unwrap(), None);
    assert_eq!(store.password_hash("bob").await.unwrap().as_deref(), Some(HASH_A));
    let left = present(&store, &["alice-1", "alice-2", "carol-1", "bob-1", "m1"]).await;
    assert_eq!(left, vec!["bob-1".to_owned(), "m1".to_owned()]);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM user_passwords").await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM ui_sessions").await, 2);

    // A user created again under the same id starts with no password.
    store.create_user(user("alice")).await.unwrap();
    assert_eq!(store.password_hash("alice").await.unwrap(), None);
});
