//! A durable process that survives `kill -9`.
//!
//! ```sh
//! cargo run --release --example durable -- --journal DIR --steps N
//! ```
//!
//! A worker takes N steps. Step i performs an effect that appends the line
//! `effect i` to `DIR/effects.log`, then sends a message to a tally child that
//! counts the steps. At the end the worker joins the tally and the program prints
//! `done steps=N`.
//!
//! Kill it at any moment (SIGKILL) and start it again with the same arguments: it
//! rebuilds the worker and its child from the journal in `DIR/journal` and carries
//! on. Effects that were journaled do not run again; an effect whose record had
//! not reached the disk when the program was killed runs again (at least once).
//! Each step's effect waits until the records of the steps before it are on disk
//! (the default `CommitPolicy::BeforeEffects`), so a kill loses at most the step
//! in flight. So `effects.log` ends up holding every step 0..N-1 in order, and a
//! step appears twice only where a kill came between its effect and its record.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chronoflow::{Ctx, DurableScheduler, Pid, Template};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Msg {
    Step(u64),
    Done,
}

fn args() -> Result<(PathBuf, u64), String> {
    let mut journal = None;
    let mut steps = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--journal" => journal = args.next().map(PathBuf::from),
            "--steps" => steps = args.next().and_then(|s| s.parse().ok()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match (journal, steps) {
        (Some(j), Some(s)) => Ok((j, s)),
        _ => Err("usage: durable --journal DIR --steps N".into()),
    }
}

fn main() -> ExitCode {
    let (dir, steps) = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let log = dir.join("effects.log");

    // Counts the steps it is told about, until Done.
    let tally = Template::new("tally", |ctx: &mut Ctx<Msg>, _: ()| {
        let mut count = 0u64;
        while let Msg::Step(_) = ctx.receive() {
            count += 1;
        }
        count
    });
    let tally_for_worker = tally.clone();
    let worker = Template::new(
        "worker",
        move |ctx: &mut Ctx<Msg>, (log, steps): (PathBuf, u64)| {
            let tally = ctx.spawn(&tally_for_worker, ()).expect("spawn the tally");
            for i in 0..steps {
                let log = log.clone();
                // The side effect: one write of one whole line.
                let written: Result<(), String> = ctx.durable_effect(move || {
                    let mut file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .map_err(|e| e.to_string())?;
                    file.write_all(format!("effect {i}\n").as_bytes())
                        .map_err(|e| e.to_string())
                });
                if let Err(e) = written {
                    panic!("step {i}: cannot append to the effects log: {e}");
                }
                ctx.send_to(tally.pid(), Msg::Step(i));
            }
            ctx.send_to(tally.pid(), Msg::Done);
            ctx.join(tally).expect("the tally counts")
        },
    );

    let opened = DurableScheduler::<Msg>::builder()
        .register(&worker)
        .register(&tally)
        .open(dir.join("journal"));
    let (mut sched, recovery) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("cannot open the journal: {e}");
            return ExitCode::FAILURE;
        }
    };
    let finished_before = recovery.records > 0
        && recovery.replayed.is_empty()
        && recovery.fast_forwarded.is_empty()
        && sched.live() == 0;
    if finished_before {
        // An earlier run finished and took the worker's result.
        println!("done steps={steps}");
        return ExitCode::SUCCESS;
    }
    if recovery.records == 0 {
        if let Err(e) = sched.spawn(&worker, (log, steps)) {
            eprintln!("cannot spawn the worker: {e}");
            return ExitCode::FAILURE;
        }
    } else {
        eprintln!(
            "recovered {} records: replaying {:?}, fast-forwarded {:?}",
            recovery.records, recovery.replayed, recovery.fast_forwarded
        );
    }
    if let Err(e) = sched.run_until_idle() {
        eprintln!("the journal failed, stopping: {e}");
        return ExitCode::FAILURE;
    }
    for v in sched.violations() {
        eprintln!("{v}");
    }
    match sched.result_of::<u64>(Pid(0)) {
        Some(Ok(counted)) => {
            println!("done steps={counted}");
            ExitCode::SUCCESS
        }
        Some(Err(e)) => {
            eprintln!("the worker failed: {e}");
            ExitCode::FAILURE
        }
        None => {
            eprintln!("the worker has not finished");
            ExitCode::FAILURE
        }
    }
}
