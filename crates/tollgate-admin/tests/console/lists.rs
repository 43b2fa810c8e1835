//! The list pages: keyset pages through "next" links that keep filters and order, the logs
//! filters, and refusals of bad filters next to their fields.

use chrono::{Duration, TimeZone, Utc};
use tollgate_store::{NewKey, NewTeam, NewUser, SpendRecord};
use tollgate_testkit::spend_record;

use super::*;

/// The UI paths of the rows a list page links to (`/ui/<what>/<id>`), in page order.
fn rows(html: &str, what: &str) -> Vec<String> {
    let needle = format!("href=\"/ui/{what}/");
    html.match_indices(&needle)
        .map(|(at, _)| html[at + needle.len()..].split('"').next().unwrap().to_owned())
        .collect()
}

/// The page link with this id (`page-next`, `page-first`), unescaped.
fn link(html: &str, id: &str) -> Option<String> {
    let needle = format!("id=\"{id}\" href=\"");
    let rest = &html[html.find(&needle)? + needle.len()..];
    Some(rest.split('"').next().unwrap().replace("&#38;", "&").replace("&amp;", "&"))
}

/// Every row of a list, following "next" links from `first`; asserts each page but the
/// first links back to the first, and that no row shows twice.
async fn walk(b: &Browser<'_>, first: &str, what: &str) -> (Vec<String>, Vec<String>) {
    let (mut seen, mut links) = (Vec::new(), Vec::new());
    let mut path = Some(first.to_owned());
    while let Some(p) = path {
        let (status, html) = b.get(&p).await;
        assert_eq!(status, 200, "{p}: {html}");
        assert!(rows(&html, what).len() <= 50, "a page holds at most 50 rows");
        if p != first {
            assert_eq!(link(&html, "page-first").as_deref(), Some(first), "{p}");
        }
        seen.extend(rows(&html, what));
        path = link(&html, "page-next");
        links.extend(path.clone());
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no row on two pages");
    (seen, links)
}

fn hash(i: usize) -> String {
    format!("{i:064x}")
}

#[tokio::test]
async fn the_keys_page_pages_by_keyset_keeping_its_filters_and_order() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let store = app.store();
    store.create_team(NewTeam { team_id: "t".into(), ..Default::default() }).await.unwrap();
    for i in 0..130 {
        let new = NewKey {
            token_hash: hash(i),
            key_name: format!("sk-...{i:04}"),
            key_alias: Some(format!("alias-{i:03}")),
            // Every other key in team `t`: 65 of them, two pages and a bit.
            team_id: (i % 2 == 0).then(|| "t".to_owned()),
            ..Default::default()
        };
        store.create_key(new).await.unwrap();
    }
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let (keys, links) = walk(&b, "/ui/keys?team=t", "keys").await;
    let expected: Vec<String> = (0..130).rev().filter(|i| i % 2 == 0).map(hash).collect();
    assert_eq!(keys, expected, "the team's keys, newest first, each once");
    assert_eq!(links.len(), 1, "65 keys: one next page");
    assert!(links[0].contains("team=t") && links[0].contains("after_id="), "{}", links[0]);
    // By name: the same keys A to Z, and the order stays on the next page's link.
    let (by_name, links) = walk(&b, "/ui/keys?team=t&order=name", "keys").await;
    let mut sorted = expected.clone();
    sorted.reverse();
    assert_eq!(by_name, sorted);
    assert!(links[0].contains("order=name"), "{}", links[0]);
    let (all, _) = walk(&b, "/ui/keys", "keys").await;
    assert_eq!(all.len(), 130);
    // A damaged link is refused, not misread.
    let (status, _) = b.get("/ui/keys?order=spend&after=lots&after_id=x").await;
    assert_eq!(status, 400);
    assert_eq!(b.get("/ui/keys?order=random").await.0, 400);
}

#[tokio::test]
async fn the_users_and_teams_pages_page_by_keyset_with_search_and_sorting() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let store = app.store();
    for i in 0..60 {
        let domain = if i % 3 == 0 { "a.example" } else { "b.example" };
        let user = NewUser {
            user_id: format!("user-{i:02}"),
            user_email: Some(format!("u{i}@{domain}")),
            ..Default::default()
        };
        store.create_user(user).await.unwrap();
        let team = NewTeam {
            team_id: format!("team-{i:02}"),
            team_alias: Some(format!("Team {:02}", 59 - i)),
            ..Default::default()
        };
        store.create_team(team).await.unwrap();
    }
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let (users, _) = walk(&b, "/ui/users", "users").await;
    let ids: Vec<String> = (0..60).map(|i| format!("user-{i:02}")).collect();
    assert_eq!(users, ids, "oldest first, each once");
    let (newest, links) = walk(&b, "/ui/users?order=newest", "users").await;
    assert_eq!(newest, ids.iter().rev().cloned().collect::<Vec<_>>());
    assert!(links[0].contains("order=newest"));
    // A search holds across pages (20 users at a.example fit one page; all 60 end in
    // `.example`).
    let (found, _) = walk(&b, "/ui/users?search=%40A.EXAMPLE", "users").await;
    assert_eq!(
        found,
        (0..60).filter(|i| i % 3 == 0).map(|i| format!("user-{i:02}")).collect::<Vec<_>>()
    );
    let (found, links) = walk(&b, "/ui/users?search=example&order=name", "users").await;
    assert_eq!(found, ids);
    assert!(links[0].contains("search=example") && links[0].contains("order=name"));

    let (teams, _) = walk(&b, "/ui/teams?order=name", "teams").await;
    // Named "Team 59" .. "Team 00" in creation order: by name is the reverse.
    let team_ids: Vec<String> = (0..60).rev().map(|i| format!("team-{i:02}")).collect();
    assert_eq!(teams, team_ids);
    let (_, html) = b.get("/ui/teams?search=team%2005").await;
    assert_eq!(rows(&html, "teams"), ["team-54"]);
    assert!(link(&html, "page-next").is_none());
}

fn logged(i: usize, at: chrono::DateTime<Utc>) -> SpendRecord {
    let (model, status, outcome) = match i % 4 {
        0 => ("gpt-4o", 200, "success"),
        1 => ("claude", 429, "refused"),
        2 => ("gpt-4o", 502, "upstream_failed"),
        _ => ("claude", 200, "success"),
    };
    SpendRecord {
        user_id: Some(if i < 100 { "ann" } else { "bob" }.to_owned()),
        status,
        outcome: outcome.into(),
        ..spend_record(&format!("req-{i:03}"), at, model)
    }
}

#[tokio::test]
async fn the_logs_page_filters_and_pages_without_losing_records_of_one_instant() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    // 120 records a second apart, but 40..=60 all in one microsecond: the first page's
    // boundary (50) falls inside that instant.
    let records: Vec<SpendRecord> = (0..120)
        .map(|i| {
            let secs = if (40..=60).contains(&i) { 40 } else { i as i64 };
            logged(i, t0 + Duration::seconds(secs))
        })
        .collect();
    app.store().insert_spend(&records).await.unwrap();
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let (all, links) = walk(&b, "/ui/logs", "logs").await;
    let mut expected = records.clone();
    expected.sort_by(|a, b| (b.started_at, &b.request_id).cmp(&(a.started_at, &a.request_id)));
    let expected: Vec<String> = expected.into_iter().map(|r| r.request_id).collect();
    assert_eq!(all, expected, "newest first, ties by id, none skipped or repeated");
    assert_eq!(links.len(), 2);

    // Filters, kept on the next page: model and outcome and status class.
    let (found, links) = walk(&b, "/ui/logs?model=claude&outcome=refused&status=4xx", "logs").await;
    let refused: Vec<&String> =
        expected.iter().filter(|id| id[4..].parse::<usize>().unwrap() % 4 == 1).collect();
    assert_eq!(found.iter().collect::<Vec<_>>(), refused);
    assert!(links.is_empty(), "30 records: one page");
    let (found, links) = walk(&b, "/ui/logs?outcome=failure&model=openai%2Fgpt-4o", "logs").await;
    assert_eq!(found.len(), 30, "the upstream failures, by served model");
    assert!(links.is_empty());
    let (found, links) = walk(&b, "/ui/logs?status=200", "logs").await;
    assert_eq!(found.len(), 60);
    assert!(links[0].contains("status=200"), "{}", links[0]);
    // A date range: [12:00:10, 12:00:20) UTC, as a browser's date-time fields send it.
    let (found, _) =
        walk(&b, "/ui/logs?from=2026-11-20T12%3A00%3A10&to=2026-11-20T12%3A00%3A20", "logs").await;
    assert_eq!(found, (10..20).rev().map(|i| format!("req-{i:03}")).collect::<Vec<_>>());
    let (_, html) = b.get("/ui/logs?to=2026-11-20").await;
    assert!(html.contains("value=\"2026-11-21T00:00:00\""), "a day includes all of it: {html}");

    // Bad filters: a message next to each field, no records read.
    let (status, html) =
        b.get("/ui/logs?status=6xx&outcome=boom&from=2026-11-21&to=2026-11-20").await;
    assert_eq!(status, 400);
    assert!(
        html.contains("`status` must be a status") && html.contains("`outcome` must be"),
        "{html}"
    );
    assert!(html.contains("`to` must be after the start"), "{html}");
    assert!(rows(&html, "logs").is_empty());
    assert_eq!(b.get("/ui/logs?after=yesterday&after_id=x").await.0, 400);
}

#[tokio::test]
async fn a_users_logs_are_their_own_whatever_the_filters_say() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    api(&app, "/user/new", json!({"user_id": "ann", "password": "ann's password", "user_role": "internal_user", "auto_create_key": false})).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let records: Vec<SpendRecord> =
        (90..110).map(|i| logged(i, t0 + Duration::seconds(i as i64))).collect();
    app.store().insert_spend(&records).await.unwrap();
    let ann = Browser::sign_in(&app, "ann", "ann's password").await;
    for path in ["/ui/logs", "/ui/logs?user=bob", "/ui/logs?user=bob&model=claude"] {
        let (status, html) = ann.get(path).await;
        assert_eq!(status, 200);
        let ids = rows(&html, "logs");
        assert!(!ids.is_empty() && ids.iter().all(|id| id.as_str() < "req-100"), "{path}: {ids:?}");
    }
}
