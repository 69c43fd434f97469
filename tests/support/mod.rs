//! Shared by the soundness regression tests: running a scenario in a child process,
//! so that an abort, a segfault or a stack overflow (which kill the whole test
//! binary) fails only the test that provoked it.

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The variable that tells a re-invoked test binary to run the scenario itself.
const VAR: &str = "CHRONOFLOW_ISOLATED_SCENARIO";

/// Runs `scenario` in a child process: this test binary again, with
/// `--exact NAME`, where `NAME` must be the name of the calling `#[test]`
/// function. The child runs the scenario (and this same function, which then just
/// runs it); the parent asserts that the child ran exactly that one test and exited
/// successfully within `timeout`, and reports how it died otherwise.
pub fn isolated_with_timeout(name: &str, timeout: Duration, scenario: impl FnOnce()) {
    isolated_inner(name, timeout, true, Ending::Passes, scenario)
}

/// [`isolated`] for a scenario that must abort the program (SIGABRT), with
/// `message` in what it wrote to stderr: the documented outcome of what can
/// neither go on nor panic.
pub fn isolated_aborting(name: &str, message: &str, scenario: impl FnOnce()) {
    isolated_inner(
        name,
        Duration::from_secs(60),
        false,
        Ending::Aborts(message),
        scenario,
    )
}

/// [`isolated`] for a scenario that must end the child process with an error
/// (any failure status) whose stderr has `says` and not `never`.
pub fn isolated_dying(name: &str, says: &str, never: &str, scenario: impl FnOnce()) {
    isolated_inner(
        name,
        Duration::from_secs(60),
        false,
        Ending::Dies { says, never },
        scenario,
    )
}

/// How the child process must end.
enum Ending<'a> {
    /// It passes its one test.
    Passes,
    /// SIGABRT, with this in its stderr.
    Aborts(&'a str),
    /// Any failure, with `says` and without `never` in its stderr.
    Dies { says: &'a str, never: &'a str },
}

/// [`isolated`] for a scenario that leaks on purpose (a stopped process whose
/// destructor waited for what could not come: its stack is abandoned, and the
/// locals on it never dropped): LeakSanitizer, when the tests run under
/// AddressSanitizer, does not check the child at exit. Every other check stays.
pub fn isolated_leaking(name: &str, scenario: impl FnOnce()) {
    isolated_inner(
        name,
        Duration::from_secs(60),
        false,
        Ending::Passes,
        scenario,
    )
}

fn isolated_inner(
    name: &str,
    timeout: Duration,
    check_leaks: bool,
    ending: Ending<'_>,
    scenario: impl FnOnce(),
) {
    if std::env::var(VAR).as_deref() == Ok(name) {
        scenario();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    if !check_leaks {
        command.env("ASAN_OPTIONS", "detect_leaks=0");
    }
    let mut child = command
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, name)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-invoke the test binary");
    // Drain both pipes on threads, so that a chatty child never blocks.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let tail = |s: &str| {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    let Some(status) = status else {
        panic!(
            "scenario `{name}` hung: killed after {timeout:?}\n--- child stderr ---\n{}",
            tail(&stderr)
        );
    };
    match ending {
        Ending::Passes => {}
        Ending::Aborts(message) => {
            assert!(
                status.signal() == Some(6) && stderr.contains(message),
                "scenario `{name}` should abort with {message:?}: {}\n--- child stderr ---\n{}",
                describe(status),
                tail(&stderr)
            );
            return;
        }
        Ending::Dies { says, never } => {
            assert!(
                !status.success() && stderr.contains(says) && !stderr.contains(never),
                "scenario `{name}` should die saying {says:?}, never {never:?}: {}\n--- child stderr ---\n{}",
                describe(status),
                tail(&stderr)
            );
            return;
        }
    }
    assert!(
        status.success() && stdout.contains("1 passed"),
        "scenario `{name}` failed in its child process: {}\n--- child stdout ---\n{}\n--- child stderr ---\n{}",
        describe(status),
        tail(&stdout),
        tail(&stderr)
    );
}

/// [`isolated_with_timeout`] with a minute.
pub fn isolated(name: &str, scenario: impl FnOnce()) {
    isolated_with_timeout(name, Duration::from_secs(60), scenario)
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(101), _) => "exit code 101 (a test assertion or panic)".to_string(),
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(libc_sig)) => format!(
            "killed by signal {libc_sig} ({})",
            match libc_sig {
                6 => "SIGABRT: an abort",
                11 => "SIGSEGV: a segfault or a stack overflow",
                7 => "SIGBUS",
                4 => "SIGILL",
                5 => "SIGTRAP",
                9 => "SIGKILL",
                _ => "?",
            }
        ),
        _ => format!("{status:?}"),
    }
}

/// The message of a caught panic.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_string()
    }
}

/// Runs `f` on a thread of its own with a plain 2 MiB stack (what a program's
/// threads commonly get), and returns what it returns; a panic in `f` is
/// re-raised here.
pub fn on_2mib_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn a thread");
    match handle.join() {
        Ok(t) => t,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}
