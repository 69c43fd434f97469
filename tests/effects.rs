//! Effects: `effect` (synchronous) and `effect_future` (woken from any thread),
//! recorded as USE, with errors coming back as values.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use chronoflow::{Ctx, Pid, Signal, SignalData, SimpleScheduler, Status, Template, Value, Wait};

/// A one-shot future completed from another thread.
struct Oneshot<T> {
    state: Arc<Mutex<(Option<T>, Option<Waker>)>>,
}

struct Completer<T> {
    state: Arc<Mutex<(Option<T>, Option<Waker>)>>,
}

fn oneshot<T>() -> (Oneshot<T>, Completer<T>) {
    let state = Arc::new(Mutex::new((None, None)));
    (
        Oneshot {
            state: state.clone(),
        },
        Completer { state },
    )
}

impl<T> Completer<T> {
    fn complete(self, value: T) {
        let waker = {
            let mut s = self.state.lock().unwrap();
            s.0 = Some(value);
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Oneshot<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.state.lock().unwrap();
        match s.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Completes `completer` with `value` from a new thread, once `gate` opens.
fn complete_later<T: Send + 'static>(
    completer: Completer<T>,
    value: T,
) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (gate, opened) = mpsc::channel::<()>();
    let thread = thread::spawn(move || {
        opened.recv().unwrap();
        thread::sleep(Duration::from_millis(10));
        completer.complete(value);
    });
    (gate, thread)
}

fn uses<I, O>(signals: &[Signal<I, O>], pid: Pid) -> Vec<Value> {
    signals
        .iter()
        .filter(|s| s.pid == pid)
        .filter_map(|s| match &s.data {
            SignalData::Use { result } => Some(result.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn effect_runs_once_returns_its_value_and_records_use() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let t = Template::new("effect", move |ctx: &mut Ctx<u64>, base: u32| {
        let v = ctx.effect(|| {
            c.fetch_add(1, Ordering::SeqCst);
            base + 1
        });
        let s = ctx.effect(|| format!("v={v}"));
        (v, s)
    });
    let mut p = t.create(Pid(4), 41).unwrap();
    p.start().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(p.result(), Some(Ok((42, "v=42".to_string()))));

    let signals = p.pull();
    let kinds: Vec<_> = signals.iter().map(|s| (s.seq, s.kind())).collect();
    assert_eq!(
        kinds,
        [
            (0, chronoflow::SignalKind::Start),
            (1, chronoflow::SignalKind::Use),
            (2, chronoflow::SignalKind::Use),
            (3, chronoflow::SignalKind::Stop),
        ]
    );
    let used = uses(&signals, Pid(4));
    assert_eq!(
        used,
        [Value::encode(&42u32), Value::encode(&"v=42".to_string())]
    );
    // A plain effect's result is shown, not encoded: it need not be serde.
    assert_eq!(
        used[0].decode::<u32>(),
        Err(chronoflow::DecodeError::NotEncoded("42".into()))
    );
}

#[test]
fn durable_effect_records_an_encoding_that_decodes() {
    let t = Template::new("t", |ctx: &mut Ctx<u32>, v: u32| {
        ctx.durable_effect(|| v + 1)
    });
    let mut p = t.create(Pid(0), 41).unwrap();
    p.start().unwrap();
    assert_eq!(p.result(), Some(Ok(42)));
    let used = uses(&p.pull(), Pid(0));
    assert_eq!(used[0].decode::<u32>(), Ok(42));
    assert_eq!(used[0].as_bytes(), Some(&[42u8][..]));
}

/// Not a serde type, nor `Clone` or `PartialEq`: only `Debug`.
#[derive(Debug)]
struct Opaque(std::cell::Cell<usize>);

#[test]
fn results_and_effect_results_need_only_debug_on_a_simple_scheduler() {
    // io::Result is no serde type: effects over ordinary I/O compile and run.
    let t = Template::new("io", |ctx: &mut Ctx<u32>, _: ()| {
        let read: std::io::Result<usize> = ctx.effect_future(async { Ok(3) });
        let failed: std::io::Result<usize> = ctx.effect(|| Err(std::io::Error::other("refused")));
        Opaque(std::cell::Cell::new(
            read.unwrap() + failed.is_err() as usize,
        ))
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&t, ()).unwrap();
    sched.run_blocking();
    let signals = sched.pull();
    assert_eq!(
        uses(&signals, h.pid()),
        [Value::text_of(&Ok::<usize, ()>(3)), {
            let e: std::io::Result<usize> = Err(std::io::Error::other("refused"));
            Value::text_of(&e)
        }]
    );
    let stop = signals.last().unwrap();
    assert_eq!(
        stop.to_string(),
        format!("{} #3 STOP Opaque(Cell {{ value: 4 }})", h.pid())
    );
    assert_eq!(sched.result(&h).unwrap().unwrap().0.get(), 4);
}

#[test]
fn effect_future_suspends_until_woken_from_another_thread() {
    let (future, completer) = oneshot::<u64>();
    let future = Arc::new(Mutex::new(Some(future)));
    let f = future.clone();
    let t = Template::new("awaits", move |ctx: &mut Ctx<u64>, _: ()| {
        let fut = f.lock().unwrap().take().expect("run once");
        ctx.effect_future(fut) * 2
    });
    // Another process keeps working while the first one waits.
    let echo = Template::new("echo", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());

    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&t, ()).unwrap();
    let e = sched.spawn(&echo, ()).unwrap();
    let (gate, thread) = complete_later(completer, 21);

    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Effect)));
    assert!(sched.update().is_idle());
    assert_eq!(sched.result(&h), None);
    sched.send(e.pid(), 9).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&e), Some(Ok(9)), "others run meanwhile");
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Effect)));

    gate.send(()).unwrap();
    sched.run_blocking();
    thread.join().unwrap();
    assert_eq!(sched.result(&h), Some(Ok(42)));
    assert_eq!(uses(&sched.pull(), h.pid()), [Value::encode(&21u64)]);
}

#[test]
fn run_blocking_returns_when_nothing_waits() {
    let mut sched: SimpleScheduler<u64> = SimpleScheduler::new();
    assert_eq!(sched.run_blocking(), 0);
    let t = Template::new("effect", |ctx: &mut Ctx<u64>, _: ()| ctx.effect(|| 3u8));
    let h = sched.spawn(&t, ()).unwrap();
    assert_eq!(sched.run_blocking(), 1);
    assert_eq!(sched.result(&h), Some(Ok(3)));
}

#[test]
fn several_futures_completed_from_threads_all_arrive() {
    let mut sched = SimpleScheduler::new();
    let t = Template::new(
        "awaits",
        |ctx: &mut Ctx<u64>, fut: Arc<Mutex<Option<Oneshot<u64>>>>| {
            let f = fut.lock().unwrap().take().unwrap();
            ctx.effect_future(f)
        },
    );
    let mut handles = Vec::new();
    let mut gates = Vec::new();
    for i in 0..4 {
        let (future, completer) = oneshot();
        handles.push(sched.spawn(&t, Arc::new(Mutex::new(Some(future)))).unwrap());
        gates.push(complete_later(completer, i * 10));
    }
    sched.run_until_idle();
    for h in &handles {
        assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Effect)));
    }
    for (gate, _) in &gates {
        gate.send(()).unwrap();
    }
    sched.run_blocking();
    for (_, thread) in gates {
        thread.join().unwrap();
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(sched.result(&h), Some(Ok(i as u64 * 10)));
    }
}

#[test]
fn effect_future_in_a_standalone_process() {
    let (future, completer) = oneshot::<String>();
    let future = Arc::new(Mutex::new(Some(future)));
    let f = future.clone();
    let t = Template::new("fetch", move |ctx: &mut Ctx<u64, String>, _: ()| {
        let fut = f.lock().unwrap().take().unwrap();
        let body = ctx.effect_future(fut);
        ctx.send(body.clone());
        body.len()
    });
    let mut p = t.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    assert_eq!(p.status(), Status::Waiting(Wait::Effect));
    let (gate, thread) = complete_later(completer, "payload".to_string());
    gate.send(()).unwrap();
    p.run_blocking();
    thread.join().unwrap();
    assert_eq!(p.result(), Some(Ok(7)));
    let signals = p.pull();
    assert_eq!(
        uses(&signals, Pid(0)),
        [Value::encode(&"payload".to_string())]
    );
    assert!(signals.iter().any(|s| s.data
        == SignalData::Send {
            to: None,
            msg: "payload".to_string()
        }));
}

#[test]
fn an_effect_error_reaches_the_process_as_a_value() {
    let t = Template::new("fallible", |ctx: &mut Ctx<u64>, _: ()| {
        let r: Result<u32, String> = ctx.effect(|| Err("disk on fire".to_string()));
        match r {
            Ok(v) => format!("ok {v}"),
            Err(e) => format!("handled: {e}"),
        }
    });
    let mut p = t.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    assert_eq!(p.result(), Some(Ok("handled: disk on fire".to_string())));
    assert_eq!(
        uses(&p.pull(), Pid(0)),
        [Value::encode(&Err::<u32, String>(
            "disk on fire".to_string()
        ))]
    );
}

#[test]
fn an_async_effect_error_reaches_the_process_as_a_value() {
    let (future, completer) = oneshot::<Result<u32, String>>();
    let future = Arc::new(Mutex::new(Some(future)));
    let f = future.clone();
    let t = Template::new("fallible", move |ctx: &mut Ctx<u64>, _: ()| {
        let fut = f.lock().unwrap().take().unwrap();
        ctx.effect_future(fut)
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&t, ()).unwrap();
    sched.run_until_idle();
    let (gate, thread) = complete_later(completer, Err("timeout".to_string()));
    gate.send(()).unwrap();
    sched.run_blocking();
    thread.join().unwrap();
    assert_eq!(sched.result(&h), Some(Ok(Err("timeout".to_string()))));
    assert_eq!(
        uses(&sched.pull(), h.pid()),
        [Value::encode(&Err::<u32, String>("timeout".to_string()))]
    );
}

#[test]
fn a_ready_future_does_not_suspend() {
    let t = Template::new("ready", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.effect_future(std::future::ready(5u16))
    });
    let mut p = t.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    // No blocking needed: the result is there after start.
    assert_eq!(p.result(), Some(Ok(5)));
}
