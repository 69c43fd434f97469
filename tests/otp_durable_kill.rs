//! A supervision tree under a durable scheduler survives real crashes: the
//! program is killed with SIGKILL at random moments, again and again, while a
//! driver fails the tree's worker round after round (each failure restarts it
//! under its name); each new run rebuilds the tree, its links, monitors,
//! names and mail from the journal and carries on. A last run, not killed,
//! takes the driver's log: it is the log of a run that was never killed.
//!
//! The program is this test binary run again as a child process (selected by
//! an environment variable), since it must be killed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use chronoflow::otp::supervisor::{ChildSpec, Supervisor, SupervisorTemplate, stop};
use chronoflow::{Ctx, DurableScheduler, Local, MailRef, Pid, Reason, Status, Template};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

#[path = "support/stories.rs"]
mod stories;
use stories::await_name;

const CASE: &str = "CHRONOFLOW_OTP_KILL_CASE";
const DIR: &str = "CHRONOFLOW_OTP_KILL_DIR";
const ROUNDS: usize = 1000;
const MAX_KILLS: u64 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Crash,
    Other,
}

type Log = Vec<String>;

fn counter() -> Template<Msg, Msg, (), ()> {
    Template::new("counter", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            if ctx.receive() == Msg::Crash {
                panic!("crash");
            }
        }
    })
}

fn tree() -> SupervisorTemplate<Msg> {
    Supervisor::new("tree")
        .intensity(1_000_000, Duration::from_secs(1))
        .child(ChildSpec::new("counter", &counter(), ()).name("counter"))
        .template()
        .unwrap()
}

/// Starts the tree, fails its worker `ROUNDS` times, stops the tree.
fn driver() -> Template<Msg, Msg, (), Log, Local> {
    let tree = tree();
    Template::local("driver", move |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let (sup, _) = ctx.spawn_monitor(&tree, ()).unwrap();
        let mut old = None;
        for _ in 0..ROUNDS {
            let pid = await_name(ctx, "counter", old);
            let m = ctx.monitor(pid);
            ctx.send_named("counter", Msg::Crash).unwrap();
            let down =
                ctx.select_mail(|d| matches!(d, MailRef::Down { monitor, .. } if monitor == m));
            log.push(format!("{pid}: {down:?}"));
            old = Some(pid);
        }
        let reason = stop(ctx, sup, Reason::Shutdown(None));
        log.push(format!("tree ended: {reason}"));
        log.push(format!("counter now {:?}", ctx.whereis("counter")));
        log
    })
}

/// The program: rebuilds the story from the journal in `dir` (or starts it)
/// and runs it; prints `driver ended` once it has, and with `take`, its log.
fn program(dir: &Path, take: bool) {
    let (mut sched, recovery) = DurableScheduler::<Msg>::builder()
        .register(&driver())
        .register(&tree())
        .register(&counter())
        .open(dir)
        .expect("open the journal");
    if recovery.records == 0 {
        let h = sched.spawn(&driver(), ()).expect("spawn the driver");
        assert_eq!(h.pid(), Pid(0));
    }
    sched.run_until_idle().expect("run");
    for v in sched.violations() {
        println!("violation: {v}");
    }
    if !take {
        if sched.status(Pid(0)) == Some(Status::Stopped) {
            println!("driver ended");
        }
        return;
    }
    match sched.result_of::<Log>(Pid(0)) {
        Some(Ok(log)) => {
            for line in log {
                println!("log: {line}");
            }
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
    program(Path::new(&dir), case == "finish");
}

fn run_child(dir: &Path, case: &str, kill_after: Option<Duration>) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_case", "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .env(DIR, dir)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if let Some(after) = kill_after {
        thread::sleep(after);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
        }
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// splitmix64: a delay in 1..=20 ms for kill number `n`.
fn delay_ms(n: u64) -> u64 {
    let mut z = n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    1 + (z ^ (z >> 31)) % 20
}

/// The lines of the driver's log that `text` prints (the first one may
/// follow the test harness's own words on its line).
fn log_of(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.find("log: ").map(|i| &l[i + 5..]))
        .collect()
}

#[test]
fn a_supervision_tree_survives_sigkills_at_random_moments() {
    // The log of a run that is never killed.
    let calm = TempDir::new().unwrap();
    let expected = run_child(calm.path(), "finish", None);
    let expected = log_of(&expected);
    assert_eq!(expected.len(), ROUNDS + 2, "{expected:#?}");
    assert!(expected[0].contains("Failed(\"crash\")"), "{expected:#?}");
    assert_eq!(expected[ROUNDS], "tree ended: shutdown");
    assert_eq!(expected[ROUNDS + 1], "counter now None");

    let tmp = TempDir::new().unwrap();
    let mut kills = 0;
    for n in 0..MAX_KILLS {
        let text = run_child(tmp.path(), "run", Some(Duration::from_millis(delay_ms(n))));
        assert!(!text.contains("violation"), "{text}");
        if text.contains("driver ended") {
            break;
        }
        kills += 1;
    }
    eprintln!("killed {kills} times");
    let text = run_child(tmp.path(), "finish", None);
    assert!(!text.contains("violation"), "{text}");
    assert_eq!(log_of(&text), expected, "{text}");
}
