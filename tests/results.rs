//! Results of top-level processes belong to their handles: kept until taken
//! while the handle lives, freed once it is dropped (or for a process spawned
//! detached), on whichever thread the handle goes.

use std::thread;

use chronoflow::{Ctx, DurableScheduler, Pid, SimpleScheduler, Status, Template};

fn waiter() -> Template<u64, u64, (), u64> {
    Template::new("waiter", |ctx: &mut Ctx<u64>, _: ()| ctx.receive() + 1)
}

#[test]
fn a_kept_handle_keeps_the_result_until_it_is_taken() {
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&waiter(), ()).unwrap();
    sched.send(h.pid(), 1).unwrap();
    sched.run_until_idle();
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Stopped));
    assert_eq!(sched.result(&h), Some(Ok(2)));
    assert_eq!(sched.status(h.pid()), None);
}

#[test]
fn dropping_the_handle_of_an_ended_process_frees_its_result() {
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&waiter(), ()).unwrap();
    let pid = h.pid();
    sched.send(pid, 1).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(pid), Some(Status::Stopped));
    drop(h);
    let _ = sched.update();
    assert_eq!(sched.status(pid), None, "freed at the next pass");
}

#[test]
fn dropping_the_handle_of_a_running_process_frees_its_result_when_it_ends() {
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&waiter(), ()).unwrap();
    let pid = h.pid();
    sched.run_until_idle();
    drop(h);
    sched.run_until_idle();
    assert_eq!(
        sched.status(pid),
        Some(Status::Waiting(chronoflow::Wait::Message))
    );
    sched.send(pid, 1).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(pid), None);
}

#[test]
fn a_handle_dropped_on_another_thread_frees_the_result() {
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&waiter(), ()).unwrap();
    let pid = h.pid();
    sched.send(pid, 1).unwrap();
    sched.run_until_idle();
    thread::spawn(move || drop(h)).join().unwrap();
    let _ = sched.update();
    assert_eq!(sched.status(pid), None);
}

#[test]
fn a_detached_process_keeps_no_result() {
    let mut sched = SimpleScheduler::new();
    let pid = sched.spawn_detached(&waiter(), ()).unwrap();
    sched.send(pid, 1).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(pid), None);
    assert_eq!(sched.live(), 0);
}

#[test]
fn a_durable_scheduler_keeps_results_whatever_becomes_of_the_handle() {
    // Handles do not survive a crash, results do: a durable result is kept
    // until taken, by handle or by pid; one spawned detached is not.
    let dir = tempfile::TempDir::new().unwrap();
    let t = waiter();
    let open = || {
        DurableScheduler::builder()
            .register(&t)
            .open(dir.path())
            .unwrap()
            .0
    };
    let detached: Pid;
    {
        let mut sched = open();
        let h = sched.spawn(&t, ()).unwrap();
        detached = sched.spawn_detached(&t, ()).unwrap();
        sched.send(h.pid(), 1).unwrap();
        sched.send(detached, 5).unwrap();
        drop(h);
        sched.run_until_idle().unwrap();
        assert_eq!(sched.status(Pid(0)), Some(Status::Stopped));
        assert_eq!(sched.status(detached), None);
    } // crash
    let mut sched = open();
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(2)));
    assert_eq!(sched.result_of::<u64>(detached), None);
}
