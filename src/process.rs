//! A standalone process: one process tree without a scheduler, fed by `push` and
//! read by `pull`, like chronoflow's `create(pid, args)`.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::engine::stackful::template::{Sharing, Template};
use crate::error::{ExitError, PushError, SpawnError, StartError};
use crate::kernel::{Kernel, PPtr, Recording, Sent, Status};
use crate::signal::{Payload, Pid, Signal, SignalData};

/// A standalone process: a template's body running without a scheduler. Its
/// inbound (`I`) and outbound (`O`) message types may differ. Everything it sends,
/// and every other signal of it and its children, lands in one outbox in emission
/// order, which [`pull`](Self::pull) drains.
///
/// ```
/// use chronoflow::{Ctx, Pid, SignalData, Template};
///
/// let greeter = Template::new("greeter", |ctx: &mut Ctx<String, String>, count: u32| {
///     for i in 0..count {
///         let name = ctx.receive();
///         ctx.send(format!("greeting #{i}: Hello {name}!"));
///     }
/// });
/// let mut p = greeter.create(Pid(0), 1).unwrap();
/// p.start().unwrap();
/// p.push("Alice".to_string()).unwrap();
/// let sent: Vec<String> = p
///     .pull()
///     .into_iter()
///     .filter_map(|s| match s.data {
///         SignalData::Send { msg, .. } => Some(msg),
///         _ => None,
///     })
///     .collect();
/// assert_eq!(sent, ["greeting #0: Hello Alice!"]);
/// ```
pub struct Process<I: 'static, O: 'static, R> {
    kernel: NonNull<Kernel<I, O>>,
    root: PPtr<I, O>,
    pid: Pid,
    started: bool,
    _result: PhantomData<fn() -> R>,
}

fn to_outbox<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    from: PPtr<I, O>,
    to: Option<Pid>,
    msg: O,
) -> Sent<O> {
    k.emit(from, || SignalData::Send { to, msg });
    Sent::Delivered
}

impl<I: 'static, O: 'static, A: 'static, R: Payload, S: Sharing> Template<I, O, A, R, S> {
    /// Creates a standalone process with pid `pid`; its children get the pids that
    /// follow. It does nothing until [`Process::start`].
    pub fn create(&self, pid: Pid, args: A) -> Result<Process<I, O, R>, SpawnError> {
        let kernel = Kernel::boxed(to_outbox::<I, O>, Recording::Buffer);
        // SAFETY: the kernel was just made and nothing else refers to it.
        let k = unsafe { &mut *kernel.as_ptr() };
        k.set_pids_after(pid.0);
        match crate::engine::stackful::create(k, self, args, None, Some(pid)) {
            Ok(root) => Ok(Process {
                kernel,
                root,
                pid,
                started: false,
                _result: PhantomData,
            }),
            Err(e) => {
                // SAFETY: not used again.
                unsafe { Kernel::destroy(kernel) };
                Err(e)
            }
        }
    }
}

impl<I: 'static, O: 'static, R: Payload> Process<I, O, R> {
    fn k(&self) -> &Kernel<I, O> {
        // SAFETY: the kernel lives as long as the process; nothing runs while it is
        // borrowed from outside.
        unsafe { self.kernel.as_ref() }
    }

    fn k_mut(&mut self) -> &mut Kernel<I, O> {
        // SAFETY: as above.
        unsafe { &mut *self.kernel.as_ptr() }
    }

    /// The process's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Starts the process (START) and runs it until it waits. A second call
    /// gives [`StartError::AlreadyStarted`] with the process's pid.
    pub fn start(&mut self) -> Result<(), StartError> {
        if self.started {
            return Err(StartError::AlreadyStarted(self.pid));
        }
        self.started = true;
        let root = self.root;
        self.k_mut().start(root);
        self.run_until_idle();
        Ok(())
    }

    /// Pushes `msg` into the inbox (and those of its children) and runs until
    /// everything waits. Before `start`, after the process stopped, or with a full
    /// inbox, the message comes back in the error.
    pub fn push(&mut self, msg: I) -> Result<(), PushError<I>> {
        if !self.started {
            return Err(PushError::NotStarted(msg));
        }
        if self.is_stopped() {
            return Err(PushError::Stopped(msg));
        }
        let pid = self.pid;
        match self.k_mut().deliver(None, pid, msg, unsent::<I, O>) {
            Sent::Delivered => {}
            Sent::Full { msg, .. } | Sent::Rejected(msg) => return Err(PushError::Full(msg)),
            Sent::NoRoute(msg) | Sent::Unknown(_, msg) => return Err(PushError::Stopped(msg)),
        }
        self.run_until_idle();
        Ok(())
    }

    /// Drains the signals emitted since the last pull, in emission order.
    pub fn pull(&mut self) -> Vec<Signal<I, O>> {
        self.k_mut().take_signals()
    }

    /// Runs until every process of the tree waits. Returns the turns run.
    pub fn run_until_idle(&mut self) -> usize {
        // SAFETY: no reference to the kernel is held across the call.
        unsafe { Kernel::run_until_idle::<crate::engine::Engines>(self.kernel) }
    }

    /// Runs until nothing can run and nothing waits on an effect's future, blocking
    /// the thread between idle passes until a waker fires.
    pub fn run_blocking(&mut self) -> usize {
        // SAFETY: no reference to the kernel is held across the call.
        unsafe { Kernel::run_blocking::<crate::engine::Engines>(self.kernel) }
    }

    fn is_stopped(&self) -> bool {
        self.k().lookup(self.pid).is_none()
    }

    /// Where the process stands; `Stopped` once it ended.
    pub fn status(&self) -> Status {
        match self.k().lookup(self.pid) {
            // SAFETY: p is live.
            Some(p) => unsafe { p.as_ref().status },
            None => Status::Stopped,
        }
    }

    /// Takes the process's result once it has ended (`None` before, or once taken).
    pub fn result(&mut self) -> Option<Result<R, ExitError>> {
        let pid = self.pid;
        self.k_mut().take_result(pid)
    }
}

fn unsent<I, O>(_: &I) -> O {
    unreachable!("a push from outside has no sender and emits no SEND")
}

impl<I: 'static, O: 'static, R> Drop for Process<I, O, R> {
    fn drop(&mut self) {
        // SAFETY: the kernel came from `Kernel::boxed` and is not used again.
        unsafe { Kernel::destroy(self.kernel) }
    }
}
