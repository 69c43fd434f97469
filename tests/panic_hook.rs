//! A panic in a process with a small stack is that process's failure, even when the
//! panic hook needs far more stack than the process has (std's default hook with
//! `RUST_BACKTRACE=1` captures and prints a backtrace): the hook runs on the
//! scheduler's stack, not on the process's.
//!
//! Each case runs this test binary again as a child process (selected by an
//! environment variable), since what it guards against is an abort.

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chronoflow::{Ctx, ExitError, SimpleScheduler, Template};

const CASE: &str = "CHRONOFLOW_PANIC_HOOK_CASE";

fn run_case(case: &str, backtrace: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_case", "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .env("RUST_BACKTRACE", backtrace)
        .output()
        .unwrap()
}

/// The body of the child program: does nothing unless a case is selected.
#[test]
fn child_case() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    let hooked = Arc::new(AtomicUsize::new(0));
    if case == "user_hook" {
        // A hook set before the first process: still called, on the big stack.
        let previous = std::panic::take_hook();
        let hooked = hooked.clone();
        std::panic::set_hook(Box::new(move |info| {
            hooked.fetch_add(1, Ordering::SeqCst);
            // Needs far more than 16 KiB of stack.
            let big = std::hint::black_box([7u8; 256 * 1024]);
            eprintln!(
                "user hook saw {} bytes",
                big.iter().filter(|&&b| b == 7).count()
            );
            previous(info)
        }));
    }
    let small = Template::new("small", |ctx: &mut Ctx<u8>, _: ()| {
        let n = ctx.receive();
        if n > 0 && std::env::var(CASE).as_deref() == Ok("nested") {
            // A panic caught inside the process, then another one.
            let caught = std::panic::catch_unwind(|| panic!("first panic, caught"));
            assert!(caught.is_err());
        }
        if n > 0 {
            panic!("small process gave up at {n}");
        }
        n
    })
    .stack_size(16 * 1024);
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&small, ()).unwrap();
    let other = sched.spawn(&small, ()).unwrap();
    sched.run_until_idle();
    sched.send(h.pid(), 3).unwrap();
    sched.run_until_idle();
    match sched.result(&h) {
        Some(Err(ExitError::Failed(m))) => assert!(m.contains("gave up at 3"), "{m}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    // The scheduler carries on: the other process still runs.
    sched.send(other.pid(), 0).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&other), Some(Ok(0)));
    if case == "user_hook" {
        assert_eq!(hooked.load(Ordering::SeqCst), 1);
    }
    println!("survived");
}

fn check(case: &str, backtrace: &str) {
    let out = run_case(case, backtrace);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("survived"),
        "the child died ({:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    // The hook ran: the panic was reported.
    assert!(
        stderr.contains("small process gave up at 3"),
        "stderr: {stderr}"
    );
}

#[test]
#[cfg_attr(
    feature = "asan",
    ignore = "AddressSanitizer's larger frames overflow a 16 KiB stack in the unwinder itself, hook or not"
)]
fn a_panic_in_a_small_stack_process_with_backtraces_on_is_its_failure() {
    check("default", "1");
}

#[test]
#[cfg_attr(
    feature = "asan",
    ignore = "AddressSanitizer's larger frames overflow a 16 KiB stack in the unwinder itself, hook or not"
)]
fn a_panic_in_a_small_stack_process_with_full_backtraces_is_its_failure() {
    check("default", "full");
}

#[test]
#[cfg_attr(
    feature = "asan",
    ignore = "AddressSanitizer's larger frames overflow a 16 KiB stack in the unwinder itself, hook or not"
)]
fn a_panic_hook_set_before_the_first_process_runs_on_the_schedulers_stack() {
    check("user_hook", "0");
    let out = run_case("user_hook", "0");
    assert!(String::from_utf8_lossy(&out.stderr).contains("user hook saw 262144 bytes"));
}

#[test]
#[cfg_attr(
    feature = "asan",
    ignore = "AddressSanitizer's larger frames overflow a 16 KiB stack in the unwinder itself, hook or not"
)]
fn two_panics_in_a_row_in_a_small_stack_process_are_both_reported() {
    check("nested", "1");
    let out = run_case("nested", "1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("first panic, caught"));
}
