//! Transitions: a body that returns `Step::Transition` continues in another entry,
//! keeping its pid, inbox and children, without growing its stack.

use std::sync::{Arc, Mutex, OnceLock};

use chronoflow::{
    Child, Ctx, Pid, Signal, SignalData, SimpleScheduler, Step, Template, Transition,
    UndeliveredReason, Value,
};

fn transitions<I, O>(signals: &[Signal<I, O>]) -> Vec<(Pid, String, Value)> {
    signals
        .iter()
        .filter_map(|s| match &s.data {
            SignalData::Transition { entry, args } => {
                Some((s.pid, entry.to_string(), args.clone()))
            }
            _ => None,
        })
        .collect()
}

type Second = (Pid, Pid, u32, Vec<u64>, Vec<u64>);

#[test]
fn a_transition_keeps_pid_inbox_and_children() {
    // `Child` is not a Payload, so the handle is passed on through shared state.
    let stash: Arc<Mutex<Option<Child<Vec<u64>>>>> = Arc::new(Mutex::new(None));
    let first_pid = Arc::new(Mutex::new(None));

    let s = stash.clone();
    let fp = first_pid.clone();
    let second = Template::new("second", move |ctx: &mut Ctx<u64>, arg: u32| -> Second {
        let kept: Vec<u64> = (0..2).map(|_| ctx.receive()).collect();
        let later = ctx.receive();
        let child = s.lock().unwrap().take().expect("stashed child");
        let mut mine = kept;
        mine.push(later);
        let theirs = ctx.join(child).unwrap();
        let first = fp.lock().unwrap().expect("first ran");
        (first, ctx.pid(), arg, mine, theirs)
    });

    let child = Template::new("child", |ctx: &mut Ctx<u64>, n: usize| {
        (0..n).map(|_| ctx.receive()).collect::<Vec<u64>>()
    });
    let s = stash.clone();
    let fp = first_pid.clone();
    let first = Template::stepping("first", move |ctx: &mut Ctx<u64>, _: ()| {
        *fp.lock().unwrap() = Some(ctx.pid());
        // 1 and 2 arrive before 100 and stay queued.
        ctx.select(|m| *m == 100);
        let c = ctx.spawn(&child, 3).unwrap();
        *s.lock().unwrap() = Some(c);
        Step::Transition(Transition::to(&second, 7u32))
    });

    let mut p = first.create(Pid(3), ()).unwrap();
    p.start().unwrap();
    for m in [1, 2, 100] {
        p.push(m).unwrap();
    }
    // Now in `second`, with 1 and 2 still queued; the child waits for a third message.
    assert_eq!(p.result(), None);
    p.push(3).unwrap();
    let (first_pid, second_pid, arg, mine, theirs) = p.result().unwrap().unwrap();
    assert_eq!(first_pid, Pid(3));
    assert_eq!(second_pid, Pid(3), "the pid is kept");
    assert_eq!(arg, 7);
    assert_eq!(mine, [1, 2, 3], "the unconsumed inbox is kept");
    assert_eq!(
        theirs,
        [1, 2, 3],
        "the child is kept and still gets messages"
    );

    let signals = p.pull();
    assert_eq!(
        transitions(&signals),
        [(Pid(3), "second".to_string(), Value::encode(&7u32))]
    );
    // One START and one STOP for the root: a transition is neither.
    let root: Vec<_> = signals.iter().filter(|s| s.pid == Pid(3)).collect();
    assert_eq!(
        root.iter()
            .filter(|s| matches!(s.data, SignalData::Start | SignalData::Stop { .. }))
            .count(),
        2
    );
    let seqs: Vec<u64> = root.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, (0..root.len() as u64).collect::<Vec<_>>());
    let t = root
        .iter()
        .position(|s| matches!(s.data, SignalData::Transition { .. }))
        .unwrap();
    assert!(matches!(root[t - 1].data, SignalData::Spawn { .. }));
}

#[test]
fn a_transition_takes_the_new_templates_route() {
    let mut sched = SimpleScheduler::new();
    let sink = Template::new("sink", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let sink = sched.spawn(&sink, ()).unwrap();
    let to = sink.pid();
    let routed =
        Template::new("routed", |ctx: &mut Ctx<u64>, m: u64| ctx.send(m)).route(move |_| Some(to));
    let unrouted = Template::stepping("unrouted", move |ctx: &mut Ctx<u64>, _: ()| {
        ctx.send(1);
        Step::Transition(Transition::to(&routed, 2))
    });
    let h = sched.spawn(&unrouted, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(())));
    assert_eq!(sched.result(&sink), Some(Ok(2)));
    let kept: Vec<_> = sched
        .take_undelivered()
        .into_iter()
        .map(|d| (d.reason, d.msg))
        .collect();
    assert_eq!(kept, [(UndeliveredReason::NoRoute, 1)]);
}

/// Counts from its argument up to `limit`, one transition per step. Records the
/// address of a local at steps 1 and `limit`.
///
/// The template transitions to itself: it reaches itself through a `Weak`, and the
/// caller keeps the returned `Arc` for as long as it runs, so that no reference
/// cycle leaks it (LeakSanitizer checks, in CI).
fn counter(
    limit: u64,
    marks: Arc<Mutex<Vec<usize>>>,
) -> Arc<OnceLock<Template<u64, u64, u64, u64>>> {
    let slot: Arc<OnceLock<Template<u64, u64, u64, u64>>> = Arc::new(OnceLock::new());
    let me = Arc::downgrade(&slot);
    let t = Template::stepping("count", move |_: &mut Ctx<u64>, n: u64| {
        let local = n;
        if n == 1 || n == limit {
            let addr = std::hint::black_box(&local) as *const u64 as usize;
            marks.lock().unwrap().push(addr);
        }
        if n == limit {
            Step::Done(n)
        } else {
            let me = me.upgrade().expect("kept by the caller");
            Step::Transition(Transition::to(me.get().expect("set"), n + 1))
        }
    })
    .stack_size(64 * 1024);
    slot.set(t).unwrap();
    slot
}

#[test]
#[cfg_attr(
    feature = "asan",
    ignore = "compares addresses of locals, which ASan moves to fake stacks (use-after-return detection)"
)]
fn a_long_chain_of_transitions_does_not_grow_the_stack() {
    const STEPS: u64 = 100_000;
    let marks = Arc::new(Mutex::new(Vec::new()));
    let mut sched = SimpleScheduler::new();
    let counter = counter(STEPS, marks.clone());
    let h = sched.spawn(counter.get().unwrap(), 0).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(STEPS)));
    let marks = marks.lock().unwrap();
    assert_eq!(marks.len(), 2);
    assert_eq!(
        marks[0], marks[1],
        "step 1 and step {STEPS} run at the same stack depth"
    );
}

#[test]
fn each_transition_of_a_chain_is_signalled() {
    const STEPS: u64 = 1000;
    let counter = counter(STEPS, Arc::default());
    let mut p = counter.get().unwrap().create(Pid(0), 0).unwrap();
    p.start().unwrap();
    assert_eq!(p.result(), Some(Ok(STEPS)));
    let signals = p.pull();
    let ts = transitions(&signals);
    assert_eq!(ts.len(), STEPS as usize);
    for (i, (pid, entry, args)) in ts.into_iter().enumerate() {
        assert_eq!(pid, Pid(0));
        assert_eq!(entry, "count");
        assert_eq!(args, Value::encode(&(i as u64 + 1)));
    }
    assert!(matches!(
        signals.last().unwrap().data,
        SignalData::Stop { .. }
    ));
}
