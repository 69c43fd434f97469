//! The per-turn budget: a process that never waits cannot starve the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chronoflow::{
    Ctx, DEFAULT_BUDGET, DEFAULT_CAPACITY, Handle, SimpleScheduler, Status, Template,
};

/// Receives three messages and returns their sum.
fn worker() -> Template<u64, u64, (), u64> {
    Template::new("worker", |ctx: &mut Ctx<u64>, _: ()| {
        (0..3).map(|_| ctx.receive()).sum()
    })
}

/// Runs at most `passes` passes, stopping when `h` has a result.
fn passes_until_done(
    sched: &mut SimpleScheduler<u64>,
    h: Handle<u64>,
    passes: usize,
) -> Option<(usize, u64)> {
    for i in 1..=passes {
        let _ = sched.update();
        if let Some(r) = sched.result(&h) {
            return Some((i, r.unwrap()));
        }
    }
    None
}

fn spinner_cannot_starve(spinner: Template<u64, u64, Arc<AtomicUsize>, ()>) {
    let spins = Arc::new(AtomicUsize::new(0));
    let mut sched = SimpleScheduler::new();
    // The spinner comes first in every pass.
    let s = sched.spawn(&spinner, spins.clone()).unwrap();
    let w = sched.spawn(&worker(), ()).unwrap();
    for m in [1, 2, 3] {
        sched.send(w.pid(), m).unwrap();
    }
    let done = passes_until_done(&mut sched, w, 5);
    assert_eq!(
        done.map(|d| d.1),
        Some(6),
        "the worker must finish within a few passes despite the spinner"
    );
    assert!(spins.load(Ordering::SeqCst) > 0);
    // The spinner is still busy and runnable: it was paused, not stopped.
    assert_eq!(sched.status(s.pid()), Some(Status::Ready));
    let before = spins.load(Ordering::SeqCst);
    let _ = sched.update();
    assert!(spins.load(Ordering::SeqCst) > before, "the spinner goes on");
}

#[test]
fn a_process_sending_to_itself_forever_cannot_starve_another() {
    spinner_cannot_starve(Template::new(
        "ping-self",
        |ctx: &mut Ctx<u64>, spins: Arc<AtomicUsize>| {
            let me = ctx.pid();
            loop {
                ctx.send_to(me, 1);
                let _ = ctx.receive();
                spins.fetch_add(1, Ordering::SeqCst);
            }
        },
    ));
}

#[test]
fn a_process_doing_effects_forever_cannot_starve_another() {
    spinner_cannot_starve(Template::new(
        "effects",
        |ctx: &mut Ctx<u64>, spins: Arc<AtomicUsize>| {
            loop {
                ctx.effect(|| spins.fetch_add(1, Ordering::SeqCst) as u64);
            }
        },
    ));
}

#[test]
fn a_process_polling_its_empty_inbox_forever_cannot_starve_another() {
    spinner_cannot_starve(Template::new(
        "poll",
        |ctx: &mut Ctx<u64>, spins: Arc<AtomicUsize>| {
            loop {
                assert_eq!(ctx.try_receive(), None);
                spins.fetch_add(1, Ordering::SeqCst);
            }
        },
    ));
}

#[test]
fn two_busy_processes_and_a_worker_with_the_smallest_budget() {
    let spins = Arc::new(AtomicUsize::new(0));
    let spinner: Template<u64, u64, Arc<AtomicUsize>, ()> =
        Template::new("spin", |ctx: &mut Ctx<u64>, spins: Arc<AtomicUsize>| {
            loop {
                ctx.effect(|| spins.fetch_add(1, Ordering::SeqCst) as u64);
            }
        });
    let mut sched = SimpleScheduler::new();
    sched.set_budget(1);
    sched.spawn(&spinner, spins.clone()).unwrap();
    let w = sched.spawn(&worker(), ()).unwrap();
    sched.spawn(&spinner, spins.clone()).unwrap();
    for m in [10, 20, 30] {
        sched.send(w.pid(), m).unwrap();
    }
    assert_eq!(passes_until_done(&mut sched, w, 10).map(|d| d.1), Some(60));
}

#[test]
fn a_sender_flooding_a_busy_receiver_does_not_starve_a_third_process() {
    // The flooder sends to the sink forever; the sink takes everything. The worker
    // must still get its turns.
    let mut sched = SimpleScheduler::new();
    let taken = Arc::new(AtomicUsize::new(0));
    let t = taken.clone();
    let sink: Template<u64, u64, (), ()> =
        Template::new("sink", move |ctx: &mut Ctx<u64>, _: ()| {
            loop {
                let _ = ctx.receive();
                t.fetch_add(1, Ordering::SeqCst);
            }
        });
    let s = sched.spawn(&sink, ()).unwrap().pid();
    let flood: Template<u64, u64, (), ()> =
        Template::new("flood", move |ctx: &mut Ctx<u64>, _: ()| {
            loop {
                ctx.send_to(s, 0);
            }
        });
    sched.spawn(&flood, ()).unwrap();
    let w = sched.spawn(&worker(), ()).unwrap();
    for m in [1, 1, 1] {
        sched.send(w.pid(), m).unwrap();
    }
    assert_eq!(passes_until_done(&mut sched, w, 6).map(|d| d.1), Some(3));
    for _ in 0..3 {
        let _ = sched.update();
        assert!(sched.inbox_len(s).unwrap() <= DEFAULT_CAPACITY);
    }
    assert!(taken.load(Ordering::SeqCst) > 0, "the sink runs too");
    assert!(sched.take_undelivered().is_empty());
    assert!(sched.inbox_len(s).unwrap() <= DEFAULT_CAPACITY);
}

/// Counts the effects a spinner performs in each of `turns` turns.
fn effects_per_turn(budget: Option<u32>, turns: usize) -> Vec<usize> {
    let spins = Arc::new(AtomicUsize::new(0));
    let spinner: Template<u64, u64, Arc<AtomicUsize>, ()> =
        Template::new("spin", |ctx: &mut Ctx<u64>, spins: Arc<AtomicUsize>| {
            loop {
                ctx.effect(|| spins.fetch_add(1, Ordering::SeqCst) as u64);
            }
        });
    let mut sched = SimpleScheduler::new();
    if let Some(b) = budget {
        sched.set_budget(b);
    }
    sched.spawn(&spinner, spins.clone()).unwrap();
    let mut per_turn = Vec::new();
    let mut last = 0;
    for _ in 0..turns {
        assert_eq!(sched.update().ran, 1);
        let now = spins.load(Ordering::SeqCst);
        per_turn.push(now - last);
        last = now;
    }
    per_turn
}

#[test]
fn set_budget_bounds_the_work_of_one_turn() {
    // The budget is what one turn may do; a turn of a busy process does exactly that
    // much work, every turn (not more after its first).
    assert_eq!(effects_per_turn(Some(10), 4), [10, 10, 10, 10]);
    assert_eq!(effects_per_turn(Some(1), 3), [1, 1, 1]);
    // At least 1.
    assert_eq!(effects_per_turn(Some(0), 3), [1, 1, 1]);
    let default = DEFAULT_BUDGET as usize;
    assert_eq!(effects_per_turn(None, 2), [default, default]);
}
