//! Names and process groups.

use chronoflow::{Ctx, Pid, RegisterError, SendError, SimpleScheduler, Template};

fn echo() -> Template<u32, u32, (), Vec<u32>> {
    Template::new("echo", |ctx: &mut Ctx<u32>, ()| {
        let mut got = Vec::new();
        loop {
            let m = ctx.receive();
            if m == 0 {
                return got;
            }
            got.push(m);
        }
    })
}

#[test]
fn a_name_reaches_its_process_and_is_freed_when_it_ends() {
    let mut s = SimpleScheduler::new();
    let a = s.spawn(&echo(), ()).unwrap();
    let b = s.spawn(&echo(), ()).unwrap();
    s.register("svc", a.pid()).unwrap();
    assert_eq!(s.whereis("svc"), Some(a.pid()));
    assert_eq!(
        s.register("svc", b.pid()),
        Err(RegisterError::NameTaken("svc".into(), a.pid()))
    );
    assert_eq!(
        s.register("other", a.pid()),
        Err(RegisterError::AlreadyNamed(a.pid(), "svc".into()))
    );
    s.send_named("svc", 1).unwrap();
    s.send_named("svc", 0).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&a), Some(Ok(vec![1])));
    // Freed with its process: the name can be taken again, and sends to it
    // reach the new holder.
    assert_eq!(s.whereis("svc"), None);
    assert!(matches!(
        s.send_named("svc", 5),
        Err(SendError::UnknownName(n, 5)) if n == "svc"
    ));
    s.register("svc", b.pid()).unwrap();
    s.send_named("svc", 2).unwrap();
    s.send_named("svc", 0).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&b), Some(Ok(vec![2])));
    assert_eq!(
        s.register("x", a.pid()),
        Err(RegisterError::NoProc(a.pid()))
    );
    assert!(s.registered().is_empty());
}

#[test]
fn a_process_registers_itself_and_others_send_by_name() {
    let mut s = SimpleScheduler::new();
    let server = Template::new("server", |ctx: &mut Ctx<u32>, ()| {
        let me = ctx.pid();
        ctx.register("server", me).unwrap();
        ctx.receive()
    });
    let client = Template::new("client", |ctx: &mut Ctx<u32>, ()| {
        ctx.send_named("server", 42).unwrap();
        ctx.send_named("nobody", 1).unwrap_err().into_inner()
    });
    let srv = s.spawn(&server, ()).unwrap();
    let cl = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&srv), Some(Ok(42)));
    assert_eq!(s.result(&cl), Some(Ok(1)));
    assert_eq!(s.unregister("server"), None);
}

#[test]
fn groups_keep_join_order_send_to_all_and_lose_members_that_end() {
    let mut s = SimpleScheduler::new();
    let a = s.spawn(&echo(), ()).unwrap();
    let b = s.spawn(&echo(), ()).unwrap();
    let c = s.spawn(&echo(), ()).unwrap();
    for h in [&b, &a, &c] {
        assert!(s.join_group("g", h.pid()));
    }
    assert!(s.join_group("g", a.pid()), "joining twice is joining once");
    assert_eq!(s.members("g"), vec![b.pid(), a.pid(), c.pid()]);
    assert!(s.leave_group("g", c.pid()));
    assert!(!s.leave_group("g", c.pid()));
    assert!(s.send_group("g", 7).is_empty());
    s.send(a.pid(), 0).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&a), Some(Ok(vec![7])));
    assert_eq!(s.members("g"), vec![b.pid()]);
    // From inside: a broadcaster sends to the group.
    let caster = Template::new("caster", |ctx: &mut Ctx<u32>, ()| {
        let n = ctx.send_group("g", 9);
        ctx.send_group("g", 0);
        n
    });
    let k = s.spawn(&caster, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&k), Some(Ok(1)));
    assert_eq!(s.result(&b), Some(Ok(vec![7, 9])));
    assert!(s.members("g").is_empty());
    assert!(!s.join_group("g", Pid(999)));
}
