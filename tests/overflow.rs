//! A process that overflows its stack hits the guard page below it and the program
//! ends with a message naming the process; other faults are left to the handler
//! that was there before.
//!
//! Each case runs this test binary again as a child process (selected by an
//! environment variable), since the program it tests must end.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use chronoflow::{Ctx, SimpleScheduler, Template};

const CASE: &str = "CHRONOFLOW_FAULT_CASE";

fn run_case(case: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_case", "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

#[inline(never)]
fn deep(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 32]);
    if n == 0 {
        0
    } else {
        deep(n - 1).wrapping_add(frame[7])
    }
}

/// The body of the child program: does nothing unless a case is selected.
#[test]
fn child_case() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    let idle = Template::new("neighbour", |ctx: &mut Ctx<u8>, _: ()| ctx.receive());
    let deep = Template::new("deep", |_: &mut Ctx<u8>, n: u64| deep(n)).stack_size(16 * 1024);
    let null = Template::new("null", |_: &mut Ctx<u8>, _: ()| {
        // SAFETY: none; this case tests that a stray fault is not reported as an
        // overflow.
        unsafe { std::ptr::read_volatile(std::hint::black_box(std::ptr::null::<u64>())) }
    });
    let mut sched = SimpleScheduler::new();
    sched.spawn(&idle, ()).unwrap();
    match case.as_str() {
        "overflow" => drop(sched.spawn(&deep, u64::MAX).unwrap()),
        "null" => drop(sched.spawn(&null, ()).unwrap()),
        _ => unreachable!(),
    }
    sched.run_until_idle();
    println!("survived");
}

#[test]
fn a_stack_overflow_aborts_with_a_message_naming_the_process() {
    let out = run_case("overflow");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc_sigabrt()),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains("chronoflow: process <1> (deep) overflowed its stack of 16384 bytes"),
        "stderr: {stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("survived"));
}

#[test]
#[cfg_attr(
    feature = "asan",
    ignore = "the handler that was there before is ASan's, which reports the fault and exits with 1 instead of dying by SIGSEGV"
)]
fn a_fault_outside_a_guard_page_is_not_reported_as_an_overflow() {
    let out = run_case("null");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(11), "SIGSEGV; stderr: {stderr}");
    assert!(!stderr.contains("overflowed"), "stderr: {stderr}");
}

fn libc_sigabrt() -> i32 {
    6
}
