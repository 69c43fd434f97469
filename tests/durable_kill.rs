//! A durable process survives real crashes: the program is killed with SIGKILL
//! at random moments, again and again, and each new run rebuilds the process from
//! the journal and carries on, until it finishes.
//!
//! The program is this test binary run again as a child process (selected by an
//! environment variable), since it must be killed. Its worker takes `STEPS` steps:
//! step i appends the line `effect i` to `effects.log` (one `write`), then sends
//! `Step(i)` to a tally child, then yields, so that each step is a pass of its own
//! and one commit. Killed between an effect and the commit of its record, a step's
//! effect runs again after the restart (at least once); a committed one never does.
//! A last run, not killed, takes the worker's result: the tally saw every step
//! once, in order.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

use chronoflow::{Ctx, DurableScheduler, Pid, Status, Template};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

const CASE: &str = "CHRONOFLOW_DURABLE_KILL_CASE";
const DIR: &str = "CHRONOFLOW_DURABLE_KILL_DIR";
const STEPS: u64 = 1000;
const MAX_KILLS: u64 = 200;

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Msg {
    Step(u64),
    Done,
}

/// The side effect of step `i`: one `write` of one whole line.
fn append_line(log: &Path, i: u64) {
    let line = format!("effect {i}\n");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the effects log");
    let written = file
        .write(line.as_bytes())
        .expect("append to the effects log");
    assert_eq!(written, line.len(), "one write of the whole line");
}

/// The program: rebuilds the worker from the journal (or starts it on an empty
/// journal) and runs it to its end. Then, if `take`, it takes the worker's result
/// and prints `done steps=N`; otherwise it prints `worker ended` and leaves the
/// result in the journal (taking it is journaled: a later run would not see it).
fn program(dir: &Path, take: bool, yields: bool) {
    let tally = Template::new("tally", |ctx: &mut Ctx<Msg>, _: ()| {
        let mut steps = Vec::new();
        while let Msg::Step(i) = ctx.receive() {
            steps.push(i);
        }
        steps
    });
    let t = tally.clone();
    let worker = Template::new(
        "worker",
        move |ctx: &mut Ctx<Msg>, (log, steps): (PathBuf, u64)| {
            let tally = ctx.spawn(&t, ()).expect("spawn the tally");
            for i in 0..steps {
                let log = log.clone();
                ctx.durable_effect(move || {
                    append_line(&log, i);
                    if !yields {
                        // A slower effect, so that kills land inside a run of
                        // steps rather than after it.
                        thread::sleep(Duration::from_micros(100));
                    }
                });
                ctx.send_to(tally.pid(), Msg::Step(i));
                if yields {
                    ctx.yield_now();
                }
            }
            ctx.send_to(tally.pid(), Msg::Done);
            ctx.join(tally).expect("the tally ends")
        },
    );
    let (mut sched, recovery) = DurableScheduler::<Msg>::builder()
        .register(&worker)
        .register(&tally)
        .open(dir.join("journal"))
        .expect("open the journal");
    if recovery.records == 0 {
        let h = sched
            .spawn(&worker, (dir.join("effects.log"), STEPS))
            .expect("spawn the worker");
        assert_eq!(h.pid(), Pid(0));
    }
    sched.run_until_idle().expect("run");
    for v in sched.violations() {
        println!("violation: {v}");
    }
    if !take {
        if sched.status(Pid(0)) == Some(Status::Stopped) {
            println!("worker ended");
        }
        return;
    }
    match sched.result_of::<Vec<u64>>(Pid(0)) {
        Some(Ok(steps)) => {
            if steps != (0..STEPS).collect::<Vec<u64>>() {
                println!("the tally got {steps:?}");
            }
            println!("done steps={}", steps.len());
        }
        other => println!("not done: {other:?}"),
    }
}

/// The body of the child program: does nothing unless a case is selected.
#[test]
fn child_case() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    let dir = std::env::var(DIR).expect("the directory");
    match case.as_str() {
        "run" => program(Path::new(&dir), false, true),
        "finish" => program(Path::new(&dir), true, true),
        "run-fast" => program(Path::new(&dir), false, false),
        "finish-fast" => program(Path::new(&dir), true, false),
        _ => unreachable!("case {case}"),
    }
}

fn start_child(dir: &Path, case: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_case", "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .env(DIR, dir)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// splitmix64: a delay in 1..=30 ms for kill number `n`.
fn delay_ms(n: u64) -> u64 {
    let mut z = n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    1 + (z ^ (z >> 31)) % 30
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The step of each line of the effects log.
fn effect_lines(log: &Path) -> Vec<u64> {
    let text = fs::read_to_string(log).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a cut line: {text:?}"
    );
    text.lines()
        .map(|line| {
            line.strip_prefix("effect ")
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("not an effect line: {line:?}"))
        })
        .collect()
}

#[test]
fn a_durable_process_survives_sigkills_at_random_moments() {
    sigkills("run", "finish");
}

/// Without the yield, a step's effect waits for the commit of the step before
/// it (the default `CommitPolicy`): still one step re-run per kill at most.
/// Before that policy, the worker ran its steps back to back in one pass, and a
/// kill re-ran every effect of the pass.
#[test]
fn steps_back_to_back_rerun_at_most_one_effect_per_kill() {
    sigkills("run-fast", "finish-fast");
}

/// Kills the `run` case at random moments until its worker ends, then runs the
/// `finish` case: every step's effect ran, in order, and a kill re-ran at most
/// the one step it interrupted.
fn sigkills(run: &str, finish: &str) {
    let tmp = TempDir::new().unwrap();
    let mut kills = 0u64;
    let mut finished = false;
    for n in 0..MAX_KILLS {
        let mut child = start_child(tmp.path(), run);
        thread::sleep(Duration::from_millis(delay_ms(n)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let out = child.wait_with_output().unwrap();
        let text = stdout(&out);
        assert!(!text.contains("violation"), "{text}");
        if text.lines().any(|line| line.ends_with("worker ended")) {
            finished = true;
            break;
        }
    }
    eprintln!("killed {kills} times; finished while being killed: {finished}");

    // A last run, left alone: it finishes (or finds the worker finished) and takes
    // the result.
    let out = start_child(tmp.path(), finish).wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("violation"), "{text}");
    assert!(!text.contains("the tally got"), "{text}");
    assert!(text.contains(&format!("done steps={STEPS}\n")), "{text}");

    let lines = effect_lines(&tmp.path().join("effects.log"));
    let mut times = vec![0u64; STEPS as usize];
    for &i in &lines {
        assert!(i < STEPS, "step {i} out of range");
        times[i as usize] += 1;
    }
    for (i, &t) in times.iter().enumerate() {
        assert!(t >= 1, "step {i} never ran");
        assert!(t <= 1 + kills, "step {i} ran {t} times for {kills} kills");
    }
    assert_eq!(lines.first(), Some(&0));
    let back = lines.windows(2).filter(|w| w[1] <= w[0]).count() as u64;
    eprintln!("{back} effects ran again");
    assert!(back <= kills, "{back} repeats for {kills} kills");
    // A step's effect waits for the commit of the step before: a kill loses at
    // most the step it interrupted, so the log only ever repeats the step before.
    for w in lines.windows(2) {
        assert!(
            w[1] == w[0] || w[1] == w[0] + 1,
            "effect {} followed by effect {}",
            w[0],
            w[1]
        );
    }
}
