//! Stackful processes on a `SimpleScheduler` and on a `DurableScheduler`, from a
//! crate built on stable Rust with chronoflow's default features off.

use chronoflow::{Ctx, DurableScheduler, Pid, SimpleScheduler, Template};

fn main() {
    // A ping-pong on a simple scheduler.
    let pong = Template::new("pong", |ctx: &mut Ctx<(Pid, u32)>, rounds: u32| {
        for _ in 0..rounds {
            let (from, n) = ctx.receive();
            ctx.send_to(from, (ctx.pid(), n + 1));
        }
    });
    let ping = Template::new(
        "ping",
        |ctx: &mut Ctx<(Pid, u32)>, (peer, rounds): (Pid, u32)| {
            let mut n = 0;
            for _ in 0..rounds {
                let me = ctx.pid();
                ctx.send_to(peer, (me, n));
                n = ctx.receive().1;
            }
            n
        },
    );
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&pong, 3).unwrap();
    let a = sched.spawn(&ping, (b.pid(), 3)).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&a), Some(Ok(3)));
    println!("simple scheduler: ping counted to 3");

    // Effects over ordinary `io::Result`s, fed from another thread.
    let reader = Template::new("reader", |ctx: &mut Ctx<(Pid, u32)>, _: ()| {
        let (_, n) = ctx.receive();
        let read: std::io::Result<u32> = ctx.effect_future(async move { Ok(n * 10) });
        read.map_err(|e| e.to_string())
    });
    let mut sched = SimpleScheduler::new();
    let r = sched.spawn(&reader, ()).unwrap();
    let sender = sched.sender();
    let pid = r.pid();
    std::thread::spawn(move || sender.send_blocking(pid, (pid, 4)).unwrap())
        .join()
        .unwrap();
    sched.run_blocking();
    assert_eq!(sched.result(&r), Some(Ok(Ok(40))));
    println!("simple scheduler: read 40 through an io::Result effect");

    // A journaled process, rebuilt from its journal by a second scheduler.
    let doubler = Template::new("doubler", |ctx: &mut Ctx<u64>, n: u64| {
        let mut total = 0;
        for _ in 0..n {
            let x = ctx.receive();
            total += ctx.durable_effect(|| x * 2);
        }
        total
    });
    let dir = std::env::temp_dir().join(format!("chronoflow-stable-user-{}", std::process::id()));
    {
        let (mut sched, _) = DurableScheduler::builder()
            .register(&doubler)
            .open(&dir)
            .unwrap();
        let h = sched.spawn(&doubler, 2).unwrap();
        sched.send(h.pid(), 1).unwrap();
        sched.run_until_idle().unwrap();
    }
    let (mut sched, recovery) = DurableScheduler::builder()
        .register(&doubler)
        .open(&dir)
        .unwrap();
    assert_eq!(recovery.replayed, [Pid(0)]);
    sched.send(Pid(0), 2).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(6)));
    drop(sched);
    std::fs::remove_dir_all(&dir).unwrap();
    println!("durable scheduler: replayed and finished with 6");
}
