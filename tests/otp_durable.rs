//! The OTP toolkit is not journaled yet: on a durable scheduler, a process that
//! uses it is held before it acts, and the violation names the call.

use chronoflow::{Ctx, DurableScheduler, Status, Template, Wait};

#[test]
fn a_durable_process_that_monitors_is_held_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let linker = Template::new("linker", |ctx: &mut Ctx<u32>, ()| {
        let me = ctx.pid();
        ctx.monitor(me);
        1u32
    });
    let (mut sched, _) = DurableScheduler::builder()
        .register(&linker)
        .open(dir.path())
        .unwrap();
    let h = sched.spawn(&linker, ()).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Held)));
    let v = sched.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].emitted, "monitor");
    assert!(v[0].recorded.contains("not journaled"), "{v:?}");
}
