//! The Parent/Child story: child processes receive what their parent receives.
//!
//! The README's "Children" section, in a `SimpleScheduler`. The parent
//! spawns three children, receives one message itself, then joins child3, child2
//! and child1 (in that order) and returns their results. Each child receives three
//! messages, printing each, and returns what it received.
//!
//! A child starts with a copy of its parent's unconsumed inbox, and from then on
//! receives every message its parent receives. To show both, `msg1` is sent to the
//! parent after it is created but before it starts, so it is still in the parent's
//! inbox when the children are spawned: each child gets its own copy, and the
//! parent still takes the original. `msg2` and `msg3` are sent to the parent only,
//! while it waits in `join`; they reach every child (and queue, unconsumed, in the
//! parent's inbox). Once the children have had three messages each they stop, the
//! parent joins them and stops, and `msg4` has no one to go to.
//!
//! Expected output:
//!
//! ```text
//! A parent <0> spawns three children, <1> to <3>. Each child gets a copy of the messages
//! waiting in its parent's inbox, then every message the parent receives.
//! The parent joins each child: it waits for the child to end and takes its result.
//! parent got msg1
//! child1 got msg1
//! child2 got msg1
//! child3 got msg1
//! child1 got msg2
//! child2 got msg2
//! child3 got msg2
//! child1 got msg3
//! child2 got msg3
//! child3 got msg3
//! parent joined <3>: ["msg1", "msg2", "msg3"]
//! parent joined <2>: ["msg1", "msg2", "msg3"]
//! parent joined <1>: ["msg1", "msg2", "msg3"]
//! parent result: its children's results, in the order it joined them: child3, child2, child1
//! msg4, sent once the parent has ended, comes back: no live process has pid <0>
//! ```

use chronoflow::{Ctx, SimpleScheduler, Template};

/// Runs the story.
pub fn run() {
    println!(
        "A parent <0> spawns three children, <1> to <3>. Each child gets a copy of the messages"
    );
    println!("waiting in its parent's inbox, then every message the parent receives.");
    println!("The parent joins each child: it waits for the child to end and takes its result.");
    let child = Template::new("child", |ctx: &mut Ctx<String>, name: String| {
        let mut received = Vec::new();
        for _ in 0..3 {
            let msg = ctx.receive();
            println!("{name} got {msg}");
            received.push(msg);
        }
        received
    });

    let parent = Template::new("parent", move |ctx: &mut Ctx<String>, (): ()| {
        let child1 = ctx.spawn(&child, "child1".to_string()).expect("a stack");
        let child2 = ctx.spawn(&child, "child2".to_string()).expect("a stack");
        let child3 = ctx.spawn(&child, "child3".to_string()).expect("a stack");

        println!("parent got {}", ctx.receive());

        let mut results = Vec::new();
        for (name, child) in [("child3", child3), ("child2", child2), ("child1", child1)] {
            let pid = child.pid();
            let received = ctx.join(child).expect("the child ran to its end");
            println!("parent joined {pid}: {received:?}");
            results.push((name.to_string(), received));
        }
        results
    });

    let mut scheduler = SimpleScheduler::new();
    let handle = scheduler.create(&parent, ()).expect("a stack");
    let pid = handle.pid();

    // Queued in the parent's inbox before it starts: the children get copies.
    scheduler
        .send(pid, "msg1".to_string())
        .expect("room in the inbox");
    scheduler.start(pid).expect("created, not started");
    scheduler.run_until_idle();

    // Sent to the parent only; every child receives them too.
    for msg in ["msg2", "msg3"] {
        scheduler
            .send(pid, msg.to_string())
            .expect("room in the inboxes");
        scheduler.run_until_idle();
    }

    let results = scheduler
        .result(&handle)
        .expect("the parent has ended")
        .expect("the parent did not fail");
    let names: Vec<&str> = results.iter().map(|(name, _)| name.as_str()).collect();
    println!(
        "parent result: its children's results, in the order it joined them: {}",
        names.join(", ")
    );
    assert_eq!(names, ["child3", "child2", "child1"]);
    assert!(
        results
            .iter()
            .all(|(_, got)| *got == ["msg1", "msg2", "msg3"])
    );

    match scheduler.send(pid, "msg4".to_string()) {
        Ok(()) => panic!("the parent has stopped; msg4 should have nowhere to go"),
        Err(e) => println!("msg4, sent once the parent has ended, comes back: {e}"),
    }
}
