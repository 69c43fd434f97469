//! `Overflow::Unbounded`: an inbox that never refuses, never drops and never makes a
//! sender wait, whatever its capacity; for its own inbox only (a parent's children
//! keep their policies).

use chronoflow::{
    Ctx, DurableScheduler, Handle, Overflow, Pid, Signal, SignalData, SimpleScheduler, Step,
    Template, Transition,
};
use tempfile::TempDir;

/// The message that lets a waiting consumer go on.
const GO: u64 = u64::MAX;

/// Waits for GO (keeping everything else), then receives `n` messages.
fn gated_consumer(n: usize) -> Template<u64, u64, (), Vec<u64>> {
    Template::new("consumer", move |ctx: &mut Ctx<u64>, _: ()| {
        ctx.select(|m| *m == GO);
        (0..n).map(|_| ctx.receive()).collect::<Vec<u64>>()
    })
    .capacity(1)
    .overflow(Overflow::Unbounded)
}

/// Sends `from..until` to `to`.
fn producer() -> Template<u64, u64, (Pid, u64, u64), ()> {
    Template::new(
        "producer",
        |ctx: &mut Ctx<u64>, (to, from, until): (Pid, u64, u64)| {
            for m in from..until {
                ctx.send_to(to, m);
            }
        },
    )
}

fn backoffs(signals: &[Signal<u64>]) -> usize {
    signals
        .iter()
        .filter(|s| matches!(s.data, SignalData::Backoff { .. }))
        .count()
}

#[test]
fn a_producer_fills_a_capacity_one_unbounded_inbox_without_waiting() {
    const N: u64 = 10_000;
    let mut sched = SimpleScheduler::new();
    sched.record();
    // A budget that lets the producer finish in one turn, unless it waits.
    sched.set_budget(u32::MAX);
    let c = sched.spawn(&gated_consumer(N as usize), ()).unwrap();
    let _ = sched.update(); // the consumer waits for GO
    let p = sched.spawn(&producer(), (c.pid(), 0, N)).unwrap();
    assert_eq!(sched.update().ran, 1);
    assert_eq!(sched.result(&p), Some(Ok(())), "the producer never waited");
    assert_eq!(sched.inbox_len(c.pid()), Some(N as usize));
    assert_eq!(sched.dropped(c.pid()), Some(0));
    let signals = sched.pull();
    assert_eq!(backoffs(&signals), 0);
    assert!(
        !signals
            .iter()
            .any(|s| matches!(s.data, SignalData::Drop { .. } | SignalData::Reject { .. }))
    );
    sched.send(c.pid(), GO).unwrap();
    sched.run_until_idle();
    assert_eq!(
        sched.result(&c),
        Some(Ok((0..N).collect())),
        "all, in order"
    );
    assert!(sched.take_undelivered().is_empty());
}

#[test]
fn sends_from_outside_to_an_unbounded_inbox_are_never_refused() {
    let mut sched = SimpleScheduler::new();
    let c = sched.spawn(&gated_consumer(5000), ()).unwrap();
    for m in 0..5000 {
        sched.send(c.pid(), m).unwrap();
    }
    sched.send(c.pid(), GO).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok((0..5000).collect())));
}

/// What a parent of [`parent_of`] returns: its messages and its child's.
type Both = (Vec<u64>, Vec<u64>);

/// Spawns `child` then takes `n` messages itself and joins the child.
fn parent_of(child: Template<u64, u64, (), Vec<u64>>, n: usize) -> Template<u64, u64, (), Both> {
    Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        ctx.select(|m| *m == GO);
        let mine: Vec<u64> = (0..n).map(|_| ctx.receive()).collect();
        (mine, ctx.join(c).unwrap())
    })
}

/// Takes `n` messages, one per turn.
fn slow_child(n: usize) -> Template<u64, u64, (), Vec<u64>> {
    Template::new("child", move |ctx: &mut Ctx<u64>, _: ()| {
        ctx.select(|m| *m == GO);
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(ctx.receive());
            ctx.yield_now();
        }
        got
    })
}

/// The parent and its one child's pid, once it has spawned it.
fn spawn_family(
    sched: &mut SimpleScheduler<u64>,
    parent: &Template<u64, u64, (), Both>,
) -> (Handle<Both>, Pid) {
    let par = sched.spawn(parent, ()).unwrap();
    let _ = sched.update();
    let kid = sched
        .pull()
        .into_iter()
        .find_map(|s| match s.data {
            SignalData::Spawn { child } => Some(child),
            _ => None,
        })
        .expect("the parent spawned its child");
    (par, kid)
}

#[test]
fn a_full_backoff_child_still_holds_back_deliveries_to_an_unbounded_parent() {
    let parent = parent_of(slow_child(20).capacity(1), 20)
        .capacity(1)
        .overflow(Overflow::Unbounded);
    let mut sched = SimpleScheduler::new();
    sched.record();
    let (handle, kid) = spawn_family(&mut sched, &parent);
    let par = handle.pid();
    // GO first (it fills the child's one slot), then 20 messages.
    sched.send(par, GO).unwrap();
    let p = sched.spawn(&producer(), (par, 0, 20)).unwrap();
    let mut signals = Vec::new();
    while !sched.update().is_idle() {
        assert!(sched.inbox_len(kid).is_none_or(|len| len <= 1));
        signals.extend(sched.pull());
    }
    let all: Vec<u64> = (0..20).collect();
    assert_eq!(sched.result(&handle), Some(Ok((all.clone(), all))));
    assert!(
        signals
            .iter()
            .any(|s| s.pid == p.pid() && s.data == SignalData::Backoff { to: kid }),
        "the sender waited for the child's inbox"
    );
    assert!(
        !signals
            .iter()
            .any(|s| s.data == SignalData::Backoff { to: par }),
        "never for the parent's"
    );
}

#[test]
fn an_unbounded_child_never_holds_back_deliveries_to_its_parent() {
    let parent = parent_of(
        slow_child(200).capacity(1).overflow(Overflow::Unbounded),
        200,
    )
    .capacity(1000);
    let mut sched = SimpleScheduler::new();
    sched.record();
    sched.set_budget(u32::MAX);
    let (handle, kid) = spawn_family(&mut sched, &parent);
    let par = handle.pid();
    let p = sched.spawn(&producer(), (par, 0, 200)).unwrap();
    let _ = sched.update(); // the producer's first turn (and the child's)
    assert_eq!(sched.result(&p), Some(Ok(())), "the producer never waited");
    assert_eq!(sched.inbox_len(kid), Some(200));
    assert_eq!(backoffs(&sched.pull()), 0);
    sched.send(par, GO).unwrap();
    sched.run_until_idle();
    let all: Vec<u64> = (0..200).collect();
    assert_eq!(sched.result(&handle), Some(Ok((all.clone(), all))));
}

#[test]
fn a_transition_to_an_unbounded_entry_lets_a_waiting_sender_go_on() {
    let unbounded = Template::new("unbounded", |ctx: &mut Ctx<u64>, n: usize| {
        (0..n).map(|_| ctx.receive()).collect::<Vec<u64>>()
    })
    .capacity(1)
    .overflow(Overflow::Unbounded);
    let first = Template::stepping("bounded", move |ctx: &mut Ctx<u64>, n: usize| {
        let head = ctx.receive();
        assert_eq!(head, 0);
        // Let the producer fill the one slot and wait for room.
        ctx.yield_now();
        Step::Transition(Transition::to(&unbounded, n - 1))
    })
    .capacity(1);
    let mut sched = SimpleScheduler::new();
    sched.record();
    let c = sched.spawn(&first, 100).unwrap();
    let p = sched.spawn(&producer(), (c.pid(), 0, 100)).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&p), Some(Ok(())));
    let signals = sched.pull();
    let transition = signals
        .iter()
        .position(|s| s.pid == c.pid() && matches!(s.data, SignalData::Transition { .. }))
        .expect("the consumer made its transition");
    assert!(
        backoffs(&signals[..transition]) >= 1,
        "it waited while the inbox was bounded"
    );
    assert_eq!(backoffs(&signals[transition..]), 0, "never after");
    assert_eq!(sched.result(&c), Some(Ok((1..100).collect())));
    assert!(sched.take_undelivered().is_empty());
}

#[test]
fn a_durable_unbounded_inbox_is_rebuilt_whole_after_a_crash() {
    const N: u64 = 500;
    let tmp = TempDir::new().unwrap();
    let c = gated_consumer(N as usize + 1);
    let p = producer();
    let open = || {
        DurableScheduler::<u64>::builder()
            .register(&c)
            .register(&p)
            .open(tmp.path())
            .unwrap()
            .0
    };
    let mut sched = open();
    sched.spawn(&c, ()).unwrap();
    sched.run_until_idle().unwrap();
    sched.spawn(&p, (Pid(0), 0, N)).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<()>(Pid(1)), Some(Ok(())));
    drop(sched);
    let mut sched = open();
    sched.run_until_idle().unwrap();
    sched.send(Pid(0), N).unwrap(); // over capacity after recovery too
    sched.send(Pid(0), GO).unwrap();
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    assert_eq!(
        sched.result_of::<Vec<u64>>(Pid(0)),
        Some(Ok((0..=N).collect()))
    );
}
