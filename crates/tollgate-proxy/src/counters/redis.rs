//! Counters in Redis. Each check is one Lua script, atomic across replicas: requests per
//! minute as a GCRA on Redis's clock, tokens over the last minute in one-second fields, and
//! requests in flight as one field per replica, which counts only while that replica's
//! heartbeat key lives (so a replica that dies frees its slots within
//! [`HEARTBEAT_TTL`]). Deployment cooldowns are announced on a channel and kept as expiring
//! keys for replicas that start later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use tokio::sync::mpsc;
use tollgate_config::Secret;

/// Longest a request waits on Redis before it is counted in process instead.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// How often the heartbeat is renewed while Redis answers, and probed while it does not.
const BEAT_EVERY: Duration = Duration::from_secs(2);
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long a replica's parallel-request slots outlive its last heartbeat.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(15);

const PREFIX: &str = "tollgate:";
const COOLDOWN_CHANNEL: &str = "tollgate:cooldowns";

/// Where cooldowns other replicas announce go: the deployment's id and the cooldown's end.
pub type OnCooldown = Arc<dyn Fn(&str, Instant) + Send + Sync>;

/// One entity's limits as Redis checks them (0: no such limit).
#[derive(Debug, Clone)]
pub struct Limited {
    /// The entity's key prefix: `key:<hash>`, `user:<id>`, `team:<id>`.
    pub entity: String,
    /// Requests per minute.
    pub rpm: u64,
    /// Tokens per minute.
    pub tpm: u64,
    /// Requests in flight.
    pub parallel: u64,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    /// Tokens per minute.
    Tokens,
    /// Requests in flight.
    Parallel,
    /// Requests per minute.
    Requests,
}

/// A refusal from the shared counters.
#[derive(Debug, Clone)]
pub struct Denial {
    /// Index of the refusing entity in the list given to [`SharedCounters::admit`].
    pub index: usize,
    /// Which of its limits refused.
    pub kind: DenialKind,
    /// How long until the limit admits again.
    pub wait: Duration,
    /// What is used of the limit (tokens, requests in flight, or the rpm limit itself).
    pub used: u64,
}

enum Op {
    Release(String),
    Tokens(String, u64),
    Cooldown(String, Duration),
}

/// The connection to Redis and this replica's part in it.
pub struct SharedCounters {
    client: redis::Client,
    conn: ConnectionManager,
    replica: String,
    up: AtomicBool,
    ops: mpsc::UnboundedSender<Op>,
    ops_rx: Mutex<Option<mpsc::UnboundedReceiver<Op>>>,
    /// Parallel slots this replica holds, per Redis key: written back after Redis was away.
    held: Mutex<HashMap<String, i64>>,
    admit: Script,
    tokens: Script,
    release: Script,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCounters")
            .field("replica", &self.replica)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What an admitted request holds in Redis: a slot under each parallel limit, given back when
/// dropped, and the tpm counters its tokens go to.
#[derive(Debug)]
pub struct SharedHold {
    counters: Arc<SharedCounters>,
    parallel: Vec<String>,
    tpm: Vec<String>,
}

impl SharedHold {
    /// Counts the tokens the request used against every tpm limit it was admitted under.
    pub fn charge_tokens(&self, tokens: u64) {
        if tokens == 0 {
            return;
        }
        for key in &self.tpm {
            let _ = self.counters.ops.send(Op::Tokens(key.clone(), tokens));
        }
    }
}

impl Drop for SharedHold {
    fn drop(&mut self) {
        let mut held = lock(&self.counters.held);
        for key in self.parallel.drain(..) {
            if let Some(n) = held.get_mut(&key) {
                *n -= 1;
            }
            let _ = self.counters.ops.send(Op::Release(key));
        }
    }
}

impl SharedCounters {
    /// Counters at `url`, not connected yet. Needs a Tokio runtime.
    pub fn new(url: &Secret<String>) -> Result<Self, String> {
        let client = redis::Client::open(url.expose().as_str())
            .map_err(|e| format!("invalid Redis URL ({:?})", e.kind()))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("cannot set up the Redis connection: {e}"))?;
        let (ops, rx) = mpsc::unbounded_channel();
        Ok(Self {
            client,
            conn,
            replica: uuid::Uuid::new_v4().simple().to_string(),
            up: AtomicBool::new(false),
            ops,
            ops_rx: Mutex::new(Some(rx)),
            held: Mutex::new(HashMap::new()),
            admit: Script::new(include_str!("admit.lua")),
            tokens: Script::new(include_str!("tokens.lua")),
            release: Script::new(include_str!("release.lua")),
        })
    }

    /// Whether Redis answered last time it was asked.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    fn beat_key(&self) -> String {
        format!("{PREFIX}replica:{}", self.replica)
    }

    /// Counts in process from now on, until the heartbeat finds Redis again.
    fn mark_down(&self, error: &dyn std::fmt::Display) {
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                error = %error,
                "Redis is not answering: rate limits and cooldowns are counted in this process until it does"
            );
            crate::metrics::set_redis_up(false);
        }
    }

    /// Checks `limited` and takes what an admitted request needs, atomically across replicas.
    /// `Err` when Redis did not answer in time (and is then marked down): count in process.
    pub async fn admit(
        self: &Arc<Self>,
        limited: &[Limited],
    ) -> Result<Result<SharedHold, Denial>, ()> {
        let mut call = self.admit.prepare_invoke();
        for l in limited {
            for kind in ["rpm", "tpm", "par"] {
                call.key(format!("{PREFIX}{}:{kind}", l.entity));
            }
        }
        call.arg(&self.replica).arg(format!("{PREFIX}replica:"));
        for l in limited {
            call.arg(l.rpm).arg(l.tpm).arg(l.parallel);
        }
        let mut conn = self.conn.clone();
        let answer: Vec<redis::Value> =
            match tokio::time::timeout(CALL_TIMEOUT, call.invoke_async(&mut conn)).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    crate::metrics::record_redis_error();
                    self.mark_down(&e);
                    return Err(());
                }
                Err(_) => {
                    crate::metrics::record_redis_error();
                    self.mark_down(&"no answer within 250 ms");
                    return Err(());
                }
            };
        let int = |v: Option<&redis::Value>| -> u64 {
            match v {
                Some(redis::Value::Int(n)) => (*n).max(0) as u64,
                _ => 0,
            }
        };
        let index = int(answer.first()) as usize;
        if index == 0 {
            let parallel: Vec<String> = limited
                .iter()
                .filter(|l| l.parallel > 0)
                .map(|l| format!("{PREFIX}{}:par", l.entity))
                .collect();
            let mut held = lock(&self.held);
            for key in &parallel {
                *held.entry(key.clone()).or_default() += 1;
            }
            drop(held);
            let tpm = limited
                .iter()
                .filter(|l| l.tpm > 0)
                .map(|l| format!("{PREFIX}{}:tpm", l.entity))
                .collect();
            return Ok(Ok(SharedHold { counters: self.clone(), parallel, tpm }));
        }
        let kind = match answer.get(1) {
            Some(redis::Value::BulkString(b)) if b == b"tpm" => DenialKind::Tokens,
            Some(redis::Value::BulkString(b)) if b == b"parallel" => DenialKind::Parallel,
            _ => DenialKind::Requests,
        };
        Ok(Err(Denial {
            index: index - 1,
            kind,
            wait: Duration::from_millis(int(answer.get(2))),
            used: int(answer.get(3)),
        }))
    }

    /// Announces that deployment `id` rests for `rest`.
    pub fn share_cooldown(&self, id: &str, rest: Duration) {
        let _ = self.ops.send(Op::Cooldown(id.to_owned(), rest));
    }

    /// The heartbeat, the queue of releases and token counts, and the cooldown channel, for
    /// as long as the process runs.
    pub async fn run(self: Arc<Self>, on_cooldown: OnCooldown) {
        let Some(rx) = lock(&self.ops_rx).take() else { return };
        crate::metrics::set_redis_up(false);
        tokio::join!(
            self.clone().heartbeat(),
            self.clone().send_ops(rx),
            self.clone().follow_cooldowns(on_cooldown)
        );
    }

    async fn heartbeat(self: Arc<Self>) {
        loop {
            let mut conn = self.conn.clone();
            let mut set = redis::cmd("SET");
            set.arg(self.beat_key())
                .arg(1)
                .arg("PX")
                .arg(HEARTBEAT_TTL.as_millis() as u64)
                .arg("GET");
            let beat = set.query_async::<Option<String>>(&mut conn);
            match tokio::time::timeout(CALL_TIMEOUT, beat).await {
                Ok(Ok(previous)) => {
                    let was_up = self.is_up();
                    if !was_up || previous.is_none() {
                        // Back, or Redis lost what it held (a restart): write our slots back.
                        match self.write_back_slots().await {
                            Ok(()) => {
                                self.up.store(true, Ordering::Release);
                                crate::metrics::set_redis_up(true);
                                if !was_up {
                                    tracing::info!(
                                        replica = %self.replica,
                                        "Redis answers: rate limits and cooldowns are shared across replicas"
                                    );
                                }
                            }
                            Err(e) => self.mark_down(&e),
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "Redis heartbeat failed");
                    self.mark_down(&e);
                }
                Err(_) => self.mark_down(&"heartbeat not answered within 250 ms"),
            }
            tokio::time::sleep(if self.is_up() { BEAT_EVERY } else { PROBE_EVERY }).await;
        }
    }

    /// Sets this replica's field of every parallel counter to the slots it holds.
    async fn write_back_slots(&self) -> redis::RedisResult<()> {
        let held: Vec<(String, i64)> = {
            let mut held = lock(&self.held);
            held.retain(|_, n| *n > 0);
            held.iter().map(|(k, n)| (k.clone(), *n)).collect()
        };
        if held.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for (key, n) in held {
            pipe.hset(&key, &self.replica, n).ignore();
        }
        tokio::time::timeout(Duration::from_secs(2), pipe.query_async::<()>(&mut conn))
            .await
            .map_err(|_| redis::RedisError::from(std::io::Error::other("timed out")))?
    }

    async fn send_ops(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Op>) {
        let mut batch = Vec::with_capacity(64);
        while rx.recv_many(&mut batch, 256).await > 0 {
            if !self.is_up() {
                // Slots are written back when Redis returns; tokens and cooldowns of the
                // outage stay with this process.
                batch.clear();
                continue;
            }
            let calls = batch.drain(..).map(|op| {
                let mut conn = self.conn.clone();
                let this = self.clone();
                async move {
                    let result = match op {
                        Op::Release(key) => this
                            .release
                            .key(key)
                            .arg(&this.replica)
                            .invoke_async::<i64>(&mut conn)
                            .await
                            .map(drop),
                        Op::Tokens(key, n) => this
                            .tokens
                            .key(key)
                            .arg(n)
                            .invoke_async::<i64>(&mut conn)
                            .await
                            .map(drop),
                        Op::Cooldown(id, rest) => {
                            let ms = rest.as_millis().max(1) as u64;
                            let mut pipe = redis::pipe();
                            pipe.cmd("SET")
                                .arg(format!("{PREFIX}cooldown:{id}"))
                                .arg(ms)
                                .arg("PX")
                                .arg(ms)
                                .ignore()
                                .publish(COOLDOWN_CHANNEL, format!("{ms}\t{id}"))
                                .ignore();
                            pipe.query_async::<()>(&mut conn).await
                        }
                    };
                    if let Err(e) = result {
                        crate::metrics::record_redis_error();
                        this.mark_down(&e);
                    }
                }
            });
            futures_util::future::join_all(calls).await;
        }
    }

    async fn follow_cooldowns(self: Arc<Self>, on_cooldown: OnCooldown) {
        loop {
            if let Err(e) = self.follow_cooldowns_once(&on_cooldown).await {
                tracing::debug!(error = %e, "Redis cooldown channel lost; resubscribing");
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }

    async fn follow_cooldowns_once(&self, on_cooldown: &OnCooldown) -> redis::RedisResult<()> {
        let connect = self.client.get_async_pubsub();
        let mut pubsub = tokio::time::timeout(Duration::from_secs(2), connect)
            .await
            .map_err(|_| redis::RedisError::from(std::io::Error::other("timed out")))??;
        pubsub.subscribe(COOLDOWN_CHANNEL).await?;
        // Cooldowns announced before this subscription, still running.
        let mut conn = self.conn.clone();
        let keys: Vec<String> = {
            let mut iter: redis::AsyncIter<String> =
                conn.scan_match(format!("{PREFIX}cooldown:*")).await?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key?);
            }
            keys
        };
        for key in keys {
            let ttl: i64 = conn.pttl(&key).await?;
            if ttl > 0
                && let Some(id) = key.strip_prefix(&format!("{PREFIX}cooldown:"))
            {
                on_cooldown(id, Instant::now() + Duration::from_millis(ttl as u64));
            }
        }
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let Ok(payload) = msg.get_payload::<String>() else { continue };
            if let Some((ms, id)) = payload.split_once('\t')
                && let Ok(ms) = ms.parse::<u64>()
            {
                on_cooldown(id, Instant::now() + Duration::from_millis(ms));
            }
        }
        Ok(())
    }
}
