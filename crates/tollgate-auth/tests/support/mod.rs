//! What the auth helper's black-box tests share: the real router on port 0 with connect info,
//! an SQLite store in a temp dir, and the GitHub stand-in behind `TOLLGATE_GITHUB_URL`.

// Each test file uses part of this.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tollgate_auth::AuthState;
use tollgate_config::{Secret, Settings};
use tollgate_store::{NewKey, SecretBox, Store};
use tollgate_testkit::MockGitHub;

pub const MASTER: &str = "sk-master-test-key";

pub struct Helper {
    pub url: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub secret_box: Arc<SecretBox>,
    pub github: MockGitHub,
    _dir: tempfile::TempDir,
}

pub async fn spawn(master_key: Option<&str>) -> Helper {
    let github = MockGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = tollgate_store::connect(None, dir.path()).await.unwrap();
    store.migrate().await.unwrap();
    let secret_box = Arc::new(SecretBox::from_env_value("auth helper test secret key").unwrap());
    let settings = Settings { master_key: master_key.map(Secret::from), ..Settings::default() };
    let http = tollgate_providers::build_http_client().unwrap();
    let state = AuthState::new(
        &settings,
        Arc::clone(&store),
        http,
        Arc::clone(&secret_box),
        github.github_url(),
        github.api_url(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = tollgate_auth::router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // No redirects followed, so tests see them; no cookie store, so tests send cookies.
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Helper { url, client, store, secret_box, github, _dir: dir }
}

/// What a page answered.
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn user_code(&self) -> String {
        between(&self.body, "aria-label=\"One-time code\">", "</output>")
    }

    pub fn status_url(&self) -> String {
        between(&self.body, "data-status-url=\"", "\"")
    }

    pub fn session_cookie(&self) -> Option<String> {
        let cookie = self.headers.get(SET_COOKIE)?.to_str().unwrap().to_owned();
        Some(cookie)
    }
}

pub fn between(text: &str, start: &str, end: &str) -> String {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?} in {text}")) + start.len();
    let len = text[from..].find(end).unwrap();
    text[from..from + len].to_owned()
}

impl Helper {
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self.client.get(format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Page { status, headers, body }
    }

    pub async fn status(&self, page: &Page) -> Value {
        let url = format!("{}{}", self.url, page.status_url());
        self.client.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// Polls the status until it leaves `pending` (or 20 s pass).
    pub async fn settled(&self, page: &Page) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.status(page).await;
            if status["state"] != "pending" || Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn create_key(&self, key: &str, blocked: bool) -> String {
        let hash = sha256_hex(key);
        self.store
            .create_key(NewKey {
                token_hash: hash.clone(),
                key_name: format!("sk-...{}", &key[key.len() - 4..]),
                blocked,
                ..NewKey::default()
            })
            .await
            .unwrap();
        hash
    }
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
