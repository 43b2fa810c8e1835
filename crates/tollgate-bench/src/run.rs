//! Workers, pacing and rounds.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::{Duration, Instant},
};

use crate::{
    cli::{Load, Plan, Target},
    conn::{self, Slot},
    stats::{Outcome, Stats},
};

/// When a worker sends its next request.
enum Ticket {
    /// Open loop: at this scheduled time (already past when the workers fall behind).
    At(Instant),
    /// Closed loop: now.
    Now,
}

/// Hands out tickets to the workers of one target for one phase. Workers take the next
/// ticket only when they are free, so when all of them are busy the schedule slips and
/// the slip is counted in the latency of the requests that waited (no coordinated omission).
struct Pacer {
    start: Instant,
    rate: Option<f64>,
    issued: Cell<u64>,
    limit: Option<u64>,
    end: Option<Instant>,
}

/// How long after the end of an open-loop phase a backlog of scheduled requests may still
/// be sent; what is left then is counted as `unsent`, so an overloaded server cannot
/// stretch a phase without bound (and its p99 is far past any limit by then anyway).
const BACKLOG_GRACE: Duration = Duration::from_secs(1);

impl Pacer {
    /// Open loop with an end: tickets scheduled before the end that were never issued.
    fn unsent(&self) -> u64 {
        let (Some(rate), Some(end)) = (self.rate, self.end) else { return 0 };
        let window = end.saturating_duration_since(self.start).as_secs_f64();
        // Ticket i is due at i / rate; those due before the end number ceil(window * rate).
        let mut due = (window * rate).ceil() as u64;
        if let Some(limit) = self.limit {
            due = due.min(limit);
        }
        due.saturating_sub(self.issued.get())
    }

    fn next(&self) -> Option<Ticket> {
        let i = self.issued.get();
        if self.limit.is_some_and(|limit| i >= limit) {
            return None;
        }
        let ticket = match self.rate {
            Some(rate) => {
                let at = self.start + Duration::from_secs_f64(i as f64 / rate);
                if let Some(end) = self.end
                    && (at >= end || Instant::now() >= end + BACKLOG_GRACE)
                {
                    return None;
                }
                Ticket::At(at)
            }
            None => {
                if self.end.is_some_and(|end| Instant::now() >= end) {
                    return None;
                }
                Ticket::Now
            }
        };
        self.issued.set(i + 1);
        Some(ticket)
    }
}

/// Runs every round and returns each target's statistics, in the order of the targets.
/// Must run inside a `LocalSet`.
pub async fn run(plan: Plan) -> (Vec<Rc<Target>>, Vec<Stats>) {
    let connections = plan.load.connections();
    let targets: Vec<Rc<Target>> = plan.targets.into_iter().map(Rc::new).collect();
    let stats: Vec<Rc<RefCell<Stats>>> =
        targets.iter().map(|_| Rc::new(RefCell::new(Stats::default()))).collect();
    // Connections live across rounds so that each round measures warm connections.
    let mut slots: Vec<Vec<Slot>> =
        targets.iter().map(|_| (0..connections).map(|_| None).collect()).collect();
    let phase = Phase {
        load: plan.load,
        warmup: plan.warmup,
        duration: plan.duration,
        requests: plan.requests,
        timeout: plan.timeout,
    };
    let n = targets.len();
    for round in 0..plan.rounds {
        for k in 0..n {
            let t = (round + k) % n;
            phase.run(&targets[t], &stats[t], &mut slots[t]).await;
        }
    }
    drop(slots);
    let stats = stats.into_iter().map(|s| std::mem::take(&mut *s.borrow_mut())).collect();
    (targets, stats)
}

struct Phase {
    load: Load,
    warmup: Duration,
    duration: Duration,
    requests: Option<u64>,
    timeout: Duration,
}

impl Phase {
    /// One target's turn in a round: warm-up, then the measured window (or a request count).
    async fn run(&self, target: &Rc<Target>, stats: &Rc<RefCell<Stats>>, slots: &mut [Slot]) {
        let start = Instant::now();
        let (measure_from, end) = match self.requests {
            Some(_) => (start, None),
            None => (start + self.warmup, Some(start + self.warmup + self.duration)),
        };
        let rate = match self.load {
            Load::Rate { rate, .. } => Some(rate),
            Load::Closed { .. } => None,
        };
        let pacer = Rc::new(Pacer { start, rate, issued: Cell::new(0), limit: self.requests, end });
        let handles: Vec<_> = slots
            .iter_mut()
            .enumerate()
            .map(|(i, slot)| {
                let worker = Worker {
                    addr: target.addrs[i % target.addrs.len()],
                    target: Rc::clone(target),
                    pacer: Rc::clone(&pacer),
                    stats: Rc::clone(stats),
                    measure_from,
                    timeout: self.timeout,
                };
                tokio::task::spawn_local(worker.run(slot.take()))
            })
            .collect();
        for (slot, handle) in slots.iter_mut().zip(handles) {
            *slot = handle.await.unwrap_or(None);
        }
        let window = match self.requests {
            Some(_) => start.elapsed(),
            None => self.duration,
        };
        let mut stats = stats.borrow_mut();
        stats.add_window(window);
        stats.add_errors("unsent", pacer.unsent());
    }
}

struct Worker {
    target: Rc<Target>,
    /// The one of the target's servers this worker's connection goes to.
    addr: std::net::SocketAddr,
    pacer: Rc<Pacer>,
    stats: Rc<RefCell<Stats>>,
    measure_from: Instant,
    timeout: Duration,
}

impl Worker {
    async fn run(self, mut slot: Slot) -> Slot {
        while let Some(ticket) = self.pacer.next() {
            let scheduled = match ticket {
                Ticket::At(at) => {
                    tokio::time::sleep_until(at.into()).await;
                    Some(at)
                }
                Ticket::Now => None,
            };
            let started = scheduled.unwrap_or_else(Instant::now);
            let outcome =
                conn::request(&self.target, self.addr, &mut slot, scheduled, self.timeout).await;
            self.record(&outcome, started);
            if scheduled.is_none() && outcome.error.as_deref() == Some("connect") {
                // A closed loop against a server that refuses connections would spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        slot
    }

    fn record(&self, outcome: &Outcome, started: Instant) {
        let mut stats = self.stats.borrow_mut();
        if !matches!(outcome.error.as_deref(), Some("connect" | "handshake")) {
            stats.count_sent();
        }
        if started >= self.measure_from {
            stats.record(outcome);
        }
    }
}
