#![cfg_attr(feature = "stackless", feature(coroutines))]
//! Limits: sizes and pids at the edge of their types give typed errors (or work),
//! never a wrapped size, a division by zero, a segfault or a huge allocation.
//!
//! Crash-prone scenarios run in a child process (`support::isolated`).

mod support;

use chronoflow::{Ctx, Pid, SendError, SimpleScheduler, SpawnError, Template};
#[cfg(feature = "stackless")]
use chronoflow::{StacklessCtx, StacklessTemplate};
use support::isolated;

fn tiny() -> Template<u64, u64, (), u64> {
    Template::new("tiny", |ctx: &mut Ctx<u64>, _: ()| ctx.receive())
}

/// `stack_size(usize::MAX)` rounded up to pages wrapped to a zero-byte stack: the
/// process segfaulted at its first resume. `usize::MAX - 4095` overflowed the slot
/// size to 0: a division by zero in the stack pool. Now both are
/// `SpawnError::StackSize`, and the scheduler works on.
#[test]
fn absurd_stack_sizes_are_a_typed_error() {
    isolated("absurd_stack_sizes_are_a_typed_error", || {
        let mut sched = SimpleScheduler::new();
        for size in [usize::MAX, usize::MAX - 4095, usize::MAX / 2 + 1] {
            let t = tiny().stack_size(size);
            match sched.spawn(&t, ()) {
                Err(SpawnError::StackSize(s)) => assert_eq!(s, size),
                Err(e) => panic!("stack size {size}: {e}"),
                Ok(_) => panic!("stack size {size}: spawned"),
            }
            match t.create(Pid(0), ()) {
                Err(SpawnError::StackSize(s)) => assert_eq!(s, size),
                Err(e) => panic!("stack size {size}: {e}"),
                Ok(_) => panic!("stack size {size}: created"),
            }
        }
        assert_eq!(sched.live(), 0);
        let ok = sched.spawn(&tiny(), ()).unwrap();
        sched.send(ok.pid(), 3).unwrap();
        sched.run_until_idle();
        assert_eq!(sched.result(&ok), Some(Ok(3)));
    });
}

/// Looking up pids never handed out, up to `u64::MAX`, allocates nothing and finds
/// nothing (the pid table grew a run of pages up to the pid: 2^58 bytes).
#[test]
fn pids_never_handed_out_are_unknown() {
    isolated("pids_never_handed_out_are_unknown", || {
        let mut sched = SimpleScheduler::new();
        let t = Template::new("fwd", |ctx: &mut Ctx<u64>, _: ()| {
            let to = ctx.receive();
            ctx.send_to(Pid(to), 7);
            to
        });
        let p = sched.spawn(&t, ()).unwrap();
        for pid in [u64::MAX, u64::MAX - 1, 1 << 60, 12345] {
            assert_eq!(sched.status(Pid(pid)), None);
            assert_eq!(sched.inbox_len(Pid(pid)), None);
            assert!(matches!(
                sched.send(Pid(pid), 1),
                Err(SendError::UnknownPid(q, 1)) if q == Pid(pid)
            ));
        }
        sched.send(p.pid(), u64::MAX).unwrap();
        sched.run_until_idle();
        assert_eq!(sched.result(&p), Some(Ok(u64::MAX)));
        let kept = sched.take_undelivered();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].to, Some(Pid(u64::MAX)));
        assert_eq!(sched.live(), 0);
    });
}

/// A standalone process at pid `u64::MAX` (its children's pids would overflow)
/// and one at `u64::MAX - 1` whose child takes the last pid: they work, and a
/// spawn past the last pid is `SpawnError::PidsExhausted`.
#[test]
fn standalone_processes_at_the_last_pids_work() {
    isolated("standalone_processes_at_the_last_pids_work", || {
        let mut p = tiny().create(Pid(u64::MAX), ()).unwrap();
        p.start().unwrap();
        p.push(9).unwrap();
        assert_eq!(p.result(), Some(Ok(9)));

        let parent = Template::new("parent", |ctx: &mut Ctx<u64>, _: ()| {
            let child = ctx.spawn(&tiny(), ()).unwrap();
            assert_eq!(child.pid(), Pid(u64::MAX));
            let late = ctx.spawn(&tiny(), ());
            assert!(matches!(late, Err(SpawnError::PidsExhausted)), "{late:?}");
            ctx.join(child).unwrap()
        });
        let mut p = parent.create(Pid(u64::MAX - 1), ()).unwrap();
        p.start().unwrap();
        p.push(4).unwrap();
        assert_eq!(p.result(), Some(Ok(4)));
    });
}

/// A stack size that rounds fine but cannot be mapped (2^62 bytes): the mapping's
/// failure, `SpawnError::Stack`.
#[test]
fn a_stack_size_too_big_to_map_is_a_spawn_error() {
    let huge = Template::new("huge", |_: &mut Ctx<u64>, _: ()| 1u64).stack_size(1 << 62);
    let mut sched = SimpleScheduler::new();
    assert!(matches!(sched.spawn(&huge, ()), Err(SpawnError::Stack(_))));
    assert_eq!(sched.live(), 0);
}

/// From inside a process, stackful or stackless: `spawn` of a template with an
/// absurd stack size gives the error back to the parent, which goes on.
#[cfg(feature = "stackless")]
#[test]
fn an_absurd_stack_size_is_a_spawn_error_for_the_parent() {
    isolated(
        "an_absurd_stack_size_is_a_spawn_error_for_the_parent",
        || {
            let huge = Template::new("huge", |_: &mut Ctx<u64>, _: ()| 1u64).stack_size(usize::MAX);
            let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
                match ctx.spawn(&huge, ()) {
                    Err(SpawnError::StackSize(_)) => "refused".to_string(),
                    Err(other) => format!("another error: {other}"),
                    Ok(c) => format!("spawned {}", c.pid()),
                }
            });
            let huge =
                Template::new("huge", |_: &mut Ctx<u64>, _: ()| 1u64).stack_size(usize::MAX - 4095);
            let stackless_parent: StacklessTemplate<u64, u64, (), String> =
                StacklessTemplate::new("stackless-parent", move |cx: StacklessCtx<u64>, _: ()| {
                    let huge = huge.clone();
                    #[coroutine]
                    move || match cx.spawn(&huge, ()) {
                        Err(SpawnError::StackSize(_)) => "refused".to_string(),
                        Err(other) => format!("another error: {other}"),
                        Ok(c) => format!("spawned {}", c.pid()),
                    }
                });
            let mut sched = SimpleScheduler::new();
            let p = sched.spawn(&parent, ()).unwrap();
            let q = sched.spawn(&stackless_parent, ()).unwrap();
            sched.run_until_idle();
            assert_eq!(sched.result(&p), Some(Ok("refused".to_string())));
            assert_eq!(sched.result(&q), Some(Ok("refused".to_string())));
            assert_eq!(sched.live(), 0);
        },
    );
}

/// A stackful process takes its stack when it first runs, not when it is
/// spawned: a parent that spawns 1,000 children that end at their first run
/// (skynet's leaves) has them run one after another on a stack or two reused,
/// not on 1,000 stacks taken at once (each of which costs its memory pages).
/// Each child reports where a local of its own lies, which is on its stack.
#[test]
#[cfg_attr(
    feature = "asan",
    ignore = "ASan moves a local whose address is taken to a fake stack on its heap"
)]
fn spawned_processes_take_their_stacks_when_they_first_run() {
    let leaf = Template::new("leaf", |_: &mut Ctx<u64>, _: ()| {
        let local = 0u8;
        std::hint::black_box(&local) as *const u8 as u64
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let children: Vec<_> = (0..1_000).map(|_| ctx.spawn(&leaf, ()).unwrap()).collect();
        let mut stacks: Vec<u64> = children
            .into_iter()
            .map(|c| ctx.join(c).unwrap() / (16 * 1024))
            .collect();
        stacks.sort_unstable();
        stacks.dedup();
        stacks.len() as u64
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    let stacks = sched.result(&h).unwrap().unwrap();
    assert!(stacks <= 4, "the 1,000 leaves ran on {stacks} stacks");
}
