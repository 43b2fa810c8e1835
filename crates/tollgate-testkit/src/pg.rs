//! Fresh PostgreSQL databases for tests, one per test, dropped afterwards.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The server tests use: `TOLLGATE_TEST_DATABASE_URL`, else the local default.
pub fn admin_url() -> String {
    std::env::var("TOLLGATE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test; dropped (forcibly) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    /// Creates a database with a random name on the test server.
    pub async fn create() -> anyhow::Result<Self> {
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.map_err(|e| {
            anyhow::anyhow!(
                "PostgreSQL is needed for this test and is not reachable ({e}); set \
                 TOLLGATE_TEST_DATABASE_URL or run scripts/test, which finds or starts one"
            )
        })?;
        let name = format!("tollgate_t_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Ok(Self { url, name, admin })
    }

    /// The URL with its host and port replaced, e.g. to go through a [`crate::FlakyRelay`].
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("postgres", &self.url));
        let (userinfo, after) = match rest.rsplit_once('@') {
            Some((u, a)) => (format!("{u}@"), a),
            None => (String::new(), rest),
        };
        let path = after.split_once('/').map_or("", |(_, p)| p);
        format!("{scheme}://{userinfo}{addr}/{path}")
    }

    /// The server's address, as found in the URL.
    pub fn server_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        let rest = self.url.split_once("://").map_or(self.url.as_str(), |(_, r)| r);
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let host = host.split('/').next().unwrap_or(host);
        let host = if host.contains(':') { host.to_owned() } else { format!("{host}:5432") };
        use std::net::ToSocketAddrs;
        host.to_socket_addrs()?.next().ok_or_else(|| anyhow::anyhow!("cannot resolve {host}"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Dropping needs a connection; do it on a thread of its own so no runtime is needed.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
