//! MCP access of keys and teams (`object_permission`, LiteLLM's shape) through the
//! management API: set on create, shown by info and list, replaced by update, and bad
//! shapes refused with the field named.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::keys::{admin, admin_get, keyed_setup, new_key};

fn access() -> Value {
    json!({
        "mcp_servers": ["memory", "filesystem"],
        "mcp_tool_permissions": {"filesystem": ["read_file", "list_directory"]},
    })
}

/// What an answer shows for a holder whose access says nothing.
fn not_set() -> Value {
    json!({"mcp_servers": null, "mcp_tool_permissions": {}})
}

#[tokio::test]
async fn a_key_keeps_its_mcp_access() {
    let (_mock, app) = keyed_setup("").await;
    let created =
        admin(&app, "/key/generate", json!({"key_alias": "mcp", "object_permission": access()}))
            .await;
    assert_eq!(created["object_permission"], access());
    let key = created["key"].as_str().unwrap().to_owned();

    let (status, info) = admin_get(&app, &format!("/key/info?key={key}")).await;
    assert_eq!(status, 200);
    assert_eq!(info["info"]["object_permission"], access());
    // The holder reads its own access too.
    let own: Value = client()
        .get(app.url("/key/info"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own["info"]["object_permission"], access());
    let (_, full) = admin_get(&app, "/key/list?return_full_object=true&key_alias=mcp").await;
    assert_eq!(full["keys"][0]["object_permission"], access());

    // An update that does not mention it keeps it; one that does replaces it whole.
    let renamed = admin(&app, "/key/update", json!({"key": key, "key_alias": "mcp-2"})).await;
    assert_eq!(renamed["object_permission"], access());
    let only_memory = json!({"mcp_servers": ["memory"]});
    let replaced =
        admin(&app, "/key/update", json!({"key": key, "object_permission": only_memory})).await;
    assert_eq!(
        replaced["object_permission"],
        json!({"mcp_servers": ["memory"], "mcp_tool_permissions": {}})
    );
    // An empty list allows no server, which is not the same as not set.
    let none =
        admin(&app, "/key/update", json!({"key": key, "object_permission": {"mcp_servers": []}}))
            .await;
    assert_eq!(none["object_permission"]["mcp_servers"], json!([]));
    let (_, info) = admin_get(&app, &format!("/key/info?key={key}")).await;
    assert_eq!(info["info"]["object_permission"]["mcp_servers"], json!([]));
    // `null` clears it back to saying nothing.
    let cleared = admin(&app, "/key/update", json!({"key": key, "object_permission": null})).await;
    assert_eq!(cleared["object_permission"], not_set());

    // A key made without it says nothing.
    let plain = admin(&app, "/key/generate", json!({})).await;
    assert_eq!(plain["object_permission"], not_set());
}

#[tokio::test]
async fn a_team_keeps_its_mcp_access() {
    let (_mock, app) = keyed_setup("").await;
    let created =
        admin(&app, "/team/new", json!({"team_id": "tools", "object_permission": access()})).await;
    assert_eq!(created["object_permission"], access());
    let (status, info) = admin_get(&app, "/team/info?team_id=tools").await;
    assert_eq!(status, 200);
    assert_eq!(info["team_info"]["object_permission"], access());
    let (_, list) = admin_get(&app, "/team/list").await;
    assert_eq!(list[0]["object_permission"], access());

    let kept =
        admin(&app, "/team/update", json!({"team_id": "tools", "team_alias": "Tools"})).await;
    assert_eq!(kept["object_permission"], access());
    let tools_only = json!({"mcp_tool_permissions": {"memory": ["read_graph"]}});
    let replaced =
        admin(&app, "/team/update", json!({"team_id": "tools", "object_permission": tools_only}))
            .await;
    let expected = json!({"mcp_servers": null, "mcp_tool_permissions": {"memory": ["read_graph"]}});
    assert_eq!(replaced["object_permission"], expected);
    let (_, info) = admin_get(&app, "/team/info?team_id=tools").await;
    assert_eq!(info["team_info"]["object_permission"], expected);

    let plain = admin(&app, "/team/new", json!({"team_id": "plain"})).await;
    assert_eq!(plain["object_permission"], not_set());
}

#[tokio::test]
async fn bad_mcp_access_is_refused_naming_the_field() {
    let (_mock, app) = keyed_setup("").await;
    let key = new_key(&app, json!({})).await;
    admin(&app, "/team/new", json!({"team_id": "t"})).await;
    let cases = [
        (json!("memory"), "object_permission", "invalid_value"),
        (json!({"mcp_servers": "memory"}), "object_permission.mcp_servers", "invalid_value"),
        (
            json!({"mcp_servers": ["memory", ""]}),
            "object_permission.mcp_servers[1]",
            "invalid_value",
        ),
        (json!({"mcp_servers": [7]}), "object_permission.mcp_servers[0]", "invalid_value"),
        (
            json!({"mcp_tool_permissions": ["read_file"]}),
            "object_permission.mcp_tool_permissions",
            "invalid_value",
        ),
        (
            json!({"mcp_tool_permissions": {"filesystem": "read_file"}}),
            "object_permission.mcp_tool_permissions.filesystem",
            "invalid_value",
        ),
        (json!({"vector_stores": ["vs-1"]}), "object_permission.vector_stores", "not_supported"),
        (
            json!({"mcp_access_groups": ["dev"]}),
            "object_permission.mcp_access_groups",
            "not_supported",
        ),
        (json!({"agents": ["a-1"]}), "object_permission.agents", "not_supported"),
        (json!({"mcp_serverz": ["memory"]}), "object_permission.mcp_serverz", "not_supported"),
    ];
    for (bad, param, code) in cases {
        let bodies = [
            ("/key/generate", json!({"key_alias": "refused", "object_permission": bad})),
            ("/key/update", json!({"key": key, "object_permission": bad})),
            ("/team/new", json!({"team_id": "refused", "object_permission": bad})),
            ("/team/update", json!({"team_id": "t", "object_permission": bad})),
        ];
        for (path, body) in bodies {
            let err = openai_error(post(&app, path, body).await, 400).await;
            assert_eq!(err["param"], param, "{path} {bad}: {err}");
            assert_eq!(err["code"], code, "{path} {bad}: {err}");
        }
    }
    let err = openai_error(
        post(&app, "/key/generate", json!({"object_permission": {"agents": ["x"]}})).await,
        400,
    )
    .await;
    assert!(err["message"].as_str().unwrap().contains("not supported"), "{err}");

    // Nothing was written by the refused calls.
    let (_, found) = admin_get(&app, "/key/list?key_alias=refused").await;
    assert_eq!(found["keys"], json!([]));
    let (status, _) = admin_get(&app, "/team/info?team_id=refused").await;
    assert_eq!(status, 404);
    let (_, info) = admin_get(&app, "/team/info?team_id=t").await;
    assert_eq!(info["team_info"]["object_permission"], not_set());

    // What LiteLLM shows for a key that has only MCP servers is taken back as it is.
    let echoed = json!({
        "object_permission_id": "5f1c",
        "mcp_servers": ["memory"],
        "mcp_access_groups": [],
        "vector_stores": [],
        "agents": null,
    });
    let updated =
        admin(&app, "/key/update", json!({"key": key, "object_permission": echoed})).await;
    assert_eq!(
        updated["object_permission"],
        json!({"mcp_servers": ["memory"], "mcp_tool_permissions": {}})
    );
}

#[tokio::test]
async fn only_admins_grant_mcp_access() {
    let (_mock, app) = keyed_setup("").await;
    let plain = new_key(&app, json!({})).await;
    for (path, body) in [
        ("/key/update", json!({"key": plain, "object_permission": access()})),
        ("/key/generate", json!({"object_permission": access()})),
        ("/team/new", json!({"team_id": "x", "object_permission": access()})),
    ] {
        let resp =
            client().post(app.url(path)).bearer_auth(&plain).json(&body).send().await.unwrap();
        assert_eq!(openai_error(resp, 403).await["code"], "not_admin", "{path}");
    }
    let (_, info) = admin_get(&app, &format!("/key/info?key={plain}")).await;
    assert_eq!(info["info"]["object_permission"], not_set());
}
