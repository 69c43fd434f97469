//! A message the journal cannot encode stops the run with a typed error, and
//! nothing of it is journaled; one whose `Deserialize` fails or panics when the
//! journal is read is refused as that record's damage, never a panic of the
//! program.

use chronoflow::journal::JournalError;
use chronoflow::{Ctx, DurableScheduler, Pid, RecoveryError, Template};
use serde::de::Deserializer;
use serde::ser::{Error as _, Serializer};
use serde::{Deserialize, Serialize};

/// A number whose encoding fails for 13 (an error) and 666 (a panic), and whose
/// decoding panics for 7 once `PANIC_ON_SEVEN` is set.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Touchy(u64);

static PANIC_ON_SEVEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Serialize for Touchy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            13 => Err(S::Error::custom("13 is not encoded")),
            666 => panic!("666 panics when encoded"),
            n => s.serialize_u64(n),
        }
    }
}

impl<'de> Deserialize<'de> for Touchy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        if n == 7 && PANIC_ON_SEVEN.load(std::sync::atomic::Ordering::SeqCst) {
            panic!("7 panics when decoded");
        }
        Ok(Touchy(n))
    }
}

/// Sends `n` to a keeper, then ends.
fn teller() -> Template<Touchy, Touchy, (Pid, u64), ()> {
    Template::new("teller", |ctx: &mut Ctx<Touchy>, (to, n): (Pid, u64)| {
        ctx.send_to(to, Touchy(n));
    })
}

/// Keeps what it receives in its inbox (waits for a message that never comes
/// first: a selective receive of 0).
fn keeper() -> Template<Touchy, Touchy, (), u64> {
    Template::new("keeper", |ctx: &mut Ctx<Touchy>, _: ()| {
        ctx.select(|m| m.0 == 0).0
    })
}

fn open(dir: &std::path::Path) -> Result<DurableScheduler<Touchy>, RecoveryError> {
    DurableScheduler::builder()
        .register(&teller())
        .register(&keeper())
        .open(dir)
        .map(|(sched, _)| sched)
}

fn unencodable_send(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut sched = open(dir.path()).unwrap();
        let keeper = sched.spawn(&keeper(), ()).unwrap().pid();
        sched.run_until_idle().unwrap();
        sched.spawn(&teller(), (keeper, 5)).unwrap();
        sched.spawn(&teller(), (keeper, n)).unwrap();
        match sched.run_until_idle() {
            Err(JournalError::Encode(_)) => {}
            other => panic!("expected an encoding error, got {other:?}"),
        }
        assert!(sched.is_stopped());
    }
    // Nothing of the message was journaled: the journal opens, the keeper has the
    // 5 that was journaled before, and the unencodable send is not on record:
    // the teller, replayed, makes it again live, and fails the same way.
    let mut sched = open(dir.path()).unwrap();
    assert_eq!(sched.scheduler().inbox_len(Pid(0)), Some(1));
    assert!(matches!(
        sched.run_until_idle(),
        Err(JournalError::Encode(_))
    ));
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
}

#[test]
fn a_message_whose_serialize_fails_stops_the_run_unjournaled() {
    unencodable_send(13);
}

#[test]
fn a_message_whose_serialize_panics_stops_the_run_unjournaled() {
    unencodable_send(666);
}

#[test]
fn a_deserialize_that_panics_at_recovery_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut sched = open(dir.path()).unwrap();
        let keeper = sched.spawn(&keeper(), ()).unwrap().pid();
        sched.spawn(&teller(), (keeper, 7)).unwrap();
        sched.run_until_idle().unwrap();
    }
    PANIC_ON_SEVEN.store(true, std::sync::atomic::Ordering::SeqCst);
    let opened = open(dir.path());
    PANIC_ON_SEVEN.store(false, std::sync::atomic::Ordering::SeqCst);
    match opened {
        Err(RecoveryError::Decode { pid, why, .. }) => {
            assert_eq!(pid, Pid(0));
            assert!(why.contains("7 panics when decoded"), "{why}");
        }
        Err(other) => panic!("expected a decoding error, got {other}"),
        Ok(_) => panic!("expected a decoding error, got a scheduler"),
    }
}

/// Takes a message, then sends 13 (which does not encode) to pid 1.
fn failing_sender() -> Template<Touchy, Touchy, (), u64> {
    Template::new("failing-sender", |ctx: &mut Ctx<Touchy>, _: ()| {
        let _ = ctx.receive();
        ctx.send_to(Pid(1), Touchy(13));
        0
    })
}

/// Takes one message and returns it.
fn taker() -> Template<Touchy, Touchy, (), u64> {
    Template::new("taker", |ctx: &mut Ctx<Touchy>, _: ()| ctx.receive().0)
}

#[test]
fn after_a_journal_error_no_process_runs_on_in_the_same_pass() {
    // The sender's failure stops the run in the middle of a pass: the taker,
    // next in that pass, must not take its message (unjournaled) and end.
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        DurableScheduler::builder()
            .register(&failing_sender())
            .register(&taker())
            .open(dir.path())
            .unwrap()
            .0
    };
    let mut sched = open();
    sched.spawn(&failing_sender(), ()).unwrap();
    sched.spawn(&taker(), ()).unwrap();
    sched.run_until_idle().unwrap();
    sched.send(Pid(0), Touchy(1)).unwrap();
    sched.send(Pid(1), Touchy(2)).unwrap();
    assert!(matches!(sched.update(), Err(JournalError::Encode(_))));
    assert_ne!(sched.status(Pid(1)), Some(chronoflow::Status::Stopped));
    assert_eq!(
        sched.result_of::<u64>(Pid(1)),
        None,
        "a result after the stop"
    );
    drop(sched);
    // The journal agrees: the taker has not ended.
    let sched = open();
    assert_ne!(sched.status(Pid(1)), Some(chronoflow::Status::Stopped));
}

/// Acts once; the effect's result is `n`.
fn actor() -> Template<Touchy, Touchy, u64, u64> {
    Template::new("actor", |ctx: &mut Ctx<Touchy>, n: u64| {
        let r = ctx.durable_effect(move || Touchy(n));
        r.0
    })
}

#[test]
fn an_effect_result_that_cannot_be_encoded_stops_the_run_unjournaled() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        DurableScheduler::builder()
            .register(&actor())
            .open(dir.path())
            .unwrap()
            .0
    };
    {
        let mut sched = open();
        sched.spawn(&actor(), 13).unwrap();
        assert!(matches!(
            sched.run_until_idle(),
            Err(JournalError::Encode(_))
        ));
        assert_ne!(sched.status(Pid(0)), Some(chronoflow::Status::Stopped));
    }
    // Nothing was journaled for it: no violation on reopening (before, an empty
    // result was journaled, which then did not decode and held the process).
    let mut sched = open();
    assert!(matches!(
        sched.run_until_idle(),
        Err(JournalError::Encode(_))
    ));
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
}
