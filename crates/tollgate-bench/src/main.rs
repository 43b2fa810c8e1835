//! `tollgate-loadgen`: the load generator of `bench/run`. See `bench/README.md`.
//!
//! Runs on one thread (a current-thread runtime) so that, pinned to one core with
//! `taskset`, it leaves the other core to the system under test.

mod cli;
mod conn;
mod run;
mod sse;
mod stats;

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use serde_json::json;

use crate::cli::{Args, Load, Mode};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = args.plan()?;
    let load = match plan.load {
        Load::Rate { rate, connections } => {
            json!({"kind": "rate", "rate": rate, "connections": connections})
        }
        Load::Closed { concurrency } => json!({"kind": "closed", "concurrency": concurrency}),
    };
    let config = json!({
        "load": load,
        "rounds": plan.rounds,
        "warmup_s": plan.warmup.as_secs_f64(),
        "duration_s": plan.duration.as_secs_f64(),
        "requests": plan.requests,
    });
    let open_loop = matches!(plan.load, Load::Rate { .. });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    let local = tokio::task::LocalSet::new();
    let (targets, stats) = local.block_on(&runtime, run::run(plan));
    let results: Vec<_> = targets
        .iter()
        .zip(&stats)
        .map(|(t, s)| s.summary(&t.name, open_loop, t.mode == Mode::Sse))
        .collect();
    let report = json!({"config": config, "results": results});
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &report)?;
    writeln!(stdout)?;
    Ok(())
}
