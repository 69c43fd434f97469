//! Agents (`chronoflow::otp::agent`), with Elixir's `Agent` semantics: the
//! functions sent run in the agent, one at a time, in arrival order.

use std::time::Duration;

use chronoflow::otp::agent::Agent;
use chronoflow::otp::supervisor::{ChildSpec, Supervisor};
use chronoflow::{CallError, Ctx, ExitError, Pid, Reason, SimpleScheduler, Template};

/// Runs `body` in a client process with an agent holding `first`.
fn with_agent<R: std::fmt::Debug + 'static>(
    first: Vec<u32>,
    body: impl Fn(&mut Ctx<()>, Agent<Vec<u32>>) -> R + 'static,
) -> Option<Result<R, ExitError>> {
    let mut sched = SimpleScheduler::new();
    let agent = sched
        .spawn(&Agent::<Vec<u32>>::template("list"), first)
        .unwrap()
        .pid();
    let client = Template::local("client", move |ctx: &mut Ctx<()>, agent: Pid| {
        body(ctx, Agent::new(agent))
    });
    let c = sched.spawn(&client, agent).unwrap();
    sched.run_until_idle();
    sched.result(&c)
}

#[test]
fn functions_run_in_arrival_order_casts_included() {
    let result = with_agent(vec![1], |ctx, a| {
        a.cast(ctx, |v| v.push(2));
        let after_update = a.update(ctx, |v| v.push(3)).unwrap();
        a.cast(ctx, |v| v.push(4));
        let len = a.get(ctx, |v| v.len()).unwrap();
        let taken = a.get_and_update(ctx, std::mem::take).unwrap();
        let now = a.get(ctx, |v| v.clone()).unwrap();
        (after_update, len, taken, now)
    });
    assert_eq!(
        result,
        Some(Ok((vec![1, 2, 3], 4, vec![1, 2, 3, 4], vec![])))
    );
}

#[test]
fn a_panicking_function_fails_the_agent() {
    let result = with_agent(vec![], |ctx, a| {
        let failed = a.get(ctx, |v: &Vec<u32>| -> u32 { v[7] });
        let after = a.get(ctx, |v| v.len());
        (failed, after)
    });
    let (failed, after) = result.unwrap().unwrap();
    assert!(
        matches!(&failed, Err(CallError::Down(Reason::Failed(why))) if why.contains("index out of bounds")),
        "{failed:?}"
    );
    assert_eq!(after, Err(CallError::NoProc));
}

#[test]
fn stop_gives_the_reason_and_the_agent_is_gone() {
    let result = with_agent(vec![], |ctx, a| {
        let reason = a.stop(ctx, Reason::Normal);
        let again = a.stop(ctx, Reason::Normal);
        (reason, again, a.get(ctx, |v| v.len()))
    });
    assert_eq!(
        result,
        Some(Ok((Reason::Normal, Reason::NoProc, Err(CallError::NoProc))))
    );
}

/// A process that never reads its mail, taken for an agent: the wait ends at
/// its timeout.
#[test]
fn a_get_waits_at_most_its_timeout() {
    let mut sched = SimpleScheduler::<()>::new();
    let deaf = Template::new("deaf", |ctx: &mut Ctx<()>, ()| ctx.receive());
    let deaf = sched.spawn(&deaf, ()).unwrap().pid();
    let client = Template::local("client", |ctx: &mut Ctx<()>, deaf: Pid| {
        Agent::<u32>::new(deaf).get_timeout(ctx, |n| *n, Some(Duration::ZERO))
    });
    let c = sched.spawn(&client, deaf).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(Err(CallError::Timeout))));
}

/// Under a supervisor, a failed agent starts again from its first value.
#[test]
fn a_supervised_agent_restarts_with_its_first_value() {
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("counter", &Agent::<u32>::template("counter"), 10).name("counter"))
        .template()
        .unwrap();
    let mut sched = SimpleScheduler::<()>::new();
    sched.spawn(&sup, ()).unwrap();
    sched.run_until_idle();
    let client = Template::local("client", |ctx: &mut Ctx<()>, ()| {
        let a = Agent::<u32>::new(ctx.whereis("counter").unwrap());
        let bumped = a.update(ctx, |n| *n += 1).unwrap();
        let failed = a.get(ctx, |_| -> u32 { panic!("boom") }).is_err();
        (bumped, failed)
    });
    let c = sched.spawn(&client, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok((11, true))));
    let reader = Template::local("reader", |ctx: &mut Ctx<()>, ()| {
        Agent::<u32>::new(ctx.whereis("counter").unwrap()).get(ctx, |n| *n)
    });
    let r = sched.spawn(&reader, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&r), Some(Ok(Ok(10))));
}

/// The scheduler's owner reads and changes an agent (`call_agent`, which
/// drives the scheduler until the answer, and `cast_agent`), in arrival order
/// with the processes' calls.
#[test]
fn the_owner_calls_and_casts_an_agent() {
    let mut sched = SimpleScheduler::<()>::new();
    let pid = sched
        .spawn(&Agent::<Vec<u32>>::template("list"), vec![1])
        .unwrap()
        .pid();
    let list = Agent::<Vec<u32>>::new(pid);
    sched.cast_agent(&list, |v| v.push(2));
    let len = sched.call_agent(&list, |v| {
        v.push(3);
        v.len()
    });
    assert_eq!(len, Ok(3));
    assert_eq!(sched.call_agent(&list, |v| v.clone()), Ok(vec![1, 2, 3]));
    // A function that panics fails the agent: the owner's call sees it.
    let failed = sched.call_agent(&list, |_| -> u32 { panic!("bad function") });
    assert!(
        matches!(failed, Err(CallError::Down(Reason::Failed(_)))),
        "{failed:?}"
    );
    assert_eq!(sched.call_agent(&list, |v| v.len()), Err(CallError::NoProc));
}
