//! The `DurableScheduler` and its builder: templates registered, the journal
//! opened and recovered, every pass group-committed.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::durable::fold::Fold;
use crate::durable::hooks::{durable, durable_mut};
use crate::durable::layout::{Layouts, MESSAGE, args_of, fingerprint, result_of};
use crate::durable::policy::CommitPolicy;
use crate::durable::record::{Record, encode_caught};
use crate::durable::recover::{Recovery, RecoveryError, decode_caught};
use crate::durable::state::{DeterminismViolation, Durable, Registration};
use crate::engine::stackful::template::{Local, Sharing, Template};
use crate::error::{ExitError, SendError, SpawnError, StartError};
use crate::journal::{FileJournal, Journal, JournalError, JournalOptions, Lsn};
use crate::kernel::{Kernel, Status, Undelivered, Wait};
use crate::scheduler::{Handle, Pass, SimpleScheduler};
use crate::sender::Sender;
use crate::signal::{DurablePayload, Payload, Pid, Signal, SignalSink, Value};
use crate::trace::{trace_event, traced};

/// How many records the oldest one a process needs may pass the last record
/// of the toolkit's whole state before it is written again (segments are kept
/// from it meanwhile).
const OTP_STATE_LAG: u64 = 4096;

/// Registers templates for a [`DurableScheduler`] and opens it.
pub struct DurableBuilder<M: 'static> {
    registry: BTreeMap<Arc<str>, Registration<M, M>>,
    options: JournalOptions,
    policy: CommitPolicy,
    replay_signals: bool,
    /// Roles whose layout changed on purpose.
    changed: BTreeSet<String>,
    clock: Option<Box<dyn crate::Clock>>,
    /// The typed requests journaled, by their type's name.
    codecs: BTreeMap<&'static str, crate::kernel::hooks::Codec>,
}

impl<M> DurableBuilder<M>
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    /// Registers `template`: processes made from it can be journaled and rebuilt.
    /// Every template a durable scheduler runs must be registered, under a name of
    /// its own.
    pub fn register<A: DurablePayload, R: DurablePayload, S: Sharing>(
        mut self,
        template: &Template<M, M, A, R, S>,
    ) -> Self {
        let t = template.clone();
        let name = template.opts.name.clone();
        let layouts = [
            (args_of(&name), fingerprint::<A>()),
            (result_of(&name), fingerprint::<R>()),
        ]
        .into_iter()
        .filter_map(|(what, fingerprint)| Some((what, fingerprint?)))
        .collect();
        let registration = Registration {
            layouts,
            encode_args: Box::new(|args: &dyn Any| {
                args.downcast_ref::<A>()
                    .and_then(|a| postcard::to_allocvec(a).ok())
            }),
            create: Box::new(
                move |k: &mut Kernel<M, M>, pid: Pid, parent: Option<Pid>, args: &[u8]| {
                    let args: A = decode_caught(args).map_err(|why| RecoveryError::Decode {
                        pid,
                        what: "arguments",
                        why,
                    })?;
                    Ok(crate::engine::stackful::create(
                        k,
                        &t,
                        args,
                        parent,
                        Some(pid),
                    )?)
                },
            ),
            encode_result: |r: &dyn Any| {
                Value::encode(
                    r.downcast_ref::<R>()
                        .expect("a result of its template's type"),
                )
            },
            decode_result: Box::new(|bytes: &[u8]| {
                decode_caught::<R>(bytes)
                    .ok()
                    .map(|r| Box::new(r) as Box<dyn Any>)
            }),
        };
        self.registry.insert(name, registration);
        self
    }

    /// Sets the clock the scheduler reads (the system clock by default); see
    /// [`SimpleScheduler::set_clock`].
    pub fn clock(mut self, clock: impl crate::Clock + 'static) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }

    /// Sets when a process's records must be durable: before each of its
    /// effects ([`CommitPolicy::BeforeEffects`], the default), or once per pass
    /// ([`CommitPolicy::PerPass`], a wider window on a crash; read its doc).
    pub fn commit_policy(mut self, policy: CommitPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Whether the signals of processes re-running their recorded history after
    /// the reopening are recorded too (default `false`: only what happens live
    /// is). When on, a replayed process emits the signals it emitted before the
    /// crash (its sends, its effects' results, its spawns, joins and
    /// transitions), each marked [`replayed`](crate::Signal::replayed): they
    /// happened before, and nothing is sent or performed again.
    pub fn replay_signals(mut self, on: bool) -> Self {
        self.replay_signals = on;
        self
    }

    /// Declares that the serde layout of `what` changed on purpose since the
    /// journal recorded it: the journal opens with the new layout instead of
    /// refusing with [`RecoveryError::LayoutChanged`], and records it. `what`
    /// is as the error names it: `"message"`, `"args of NAME"` or
    /// `"result of NAME"` (NAME a template's). Declare it only for a change the
    /// journal's bytes survive: the new type decodes every value the journal
    /// holds of the old one as what it meant (a migration), or no value of the
    /// old layout is left in the journal (every process that held one ended and
    /// was reaped).
    pub fn layout_changed(mut self, what: impl Into<String>) -> Self {
        self.changed.insert(what.into());
        self
    }

    /// Sets the journal's options (sync policy, segment size).
    pub fn options(mut self, options: JournalOptions) -> Self {
        self.options = options;
        self
    }

    /// Registers a typed request ([`Ctx::durable_request`](crate::Ctx::durable_request)):
    /// a request of type `Q` waiting in a server's mail at a crash is rebuilt
    /// from the journal by it, and its reply encoded. A supervisor's requests
    /// ([`WhichChildren`](crate::otp::supervisor::WhichChildren) and its
    /// kin, but `AddChild`, whose spec is code) are registered the same way.
    pub fn request<Q: crate::otp::DurableRequest>(mut self) -> Self {
        let codec = crate::otp::request::codec::<Q>();
        self.codecs.insert(codec.name, codec);
        self
    }

    /// Registers server `S` (see [`otp::server`](crate::otp::server)): its
    /// template (its start arguments a serde type), the entry of its
    /// snapshots (its state a serde type: see
    /// [`Server::SNAPSHOT_EVERY`](crate::otp::server::Server::SNAPSHOT_EVERY)),
    /// and its calls, casts and stops as durable requests, so that a durable process calls it with
    /// [`ServerRef::durable_call`](crate::otp::server::ServerRef::durable_call),
    /// casts with [`durable_cast`](crate::otp::server::ServerRef::durable_cast)
    /// and stops it with [`stop`](crate::otp::server::ServerRef::stop).
    pub fn server<S>(self, template: &Template<M, M, S::Args, (), Local>) -> Self
    where
        S: crate::otp::server::Server<Engine = crate::otp::server::Stackful, Msg = M>
            + Serialize
            + DeserializeOwned,
        S::Args: DurablePayload,
        S::Call: Serialize + DeserializeOwned,
        S::Reply: DurablePayload,
        S::Cast: Serialize + DeserializeOwned,
    {
        use crate::otp::server::{CallOf, CastOf, StopWith, snapshot_template};
        let snapshots = snapshot_template::<S>(&template.opts.name);
        self.register(template)
            .register(&snapshots)
            .request::<CallOf<S>>()
            .request::<CastOf<S>>()
            .request::<StopWith>()
    }

    /// Opens the journal in `dir` (created if missing) and rebuilds every process
    /// it holds.
    pub fn open(
        self,
        dir: impl AsRef<Path>,
    ) -> Result<(DurableScheduler<M>, Recovery), RecoveryError> {
        // The records, streamed: each one folded into what its process was, then
        // dropped. Nothing on disk changes until every record is read.
        let mut reader = FileJournal::read(dir, self.options)?;
        let mut fold = Fold::default();
        for entry in reader.by_ref() {
            let entry = entry?;
            let record: Record =
                postcard::from_bytes(&entry.bytes).map_err(|source| RecoveryError::Record {
                    lsn: entry.lsn.0,
                    at: entry.position(),
                    source,
                })?;
            fold.apply(entry.lsn.0, record)?;
        }
        // The layouts of the types as they are now, against the journal's.
        let mut layouts = Layouts::new();
        if let Some(fingerprint) = fingerprint::<M>() {
            layouts.insert(MESSAGE.to_string(), fingerprint);
        }
        for registration in self.registry.values() {
            layouts.extend(registration.layouts.iter().cloned());
        }
        for (what, &current) in &layouts {
            if let Some(&recorded) = fold.layouts.get(what)
                && recorded != current
                && !self.changed.contains(what)
            {
                return Err(RecoveryError::LayoutChanged {
                    what: what.clone(),
                    recorded,
                    current,
                });
            }
        }
        let (journal, truncated) = reader.finish()?;
        let mut sched = SimpleScheduler::new();
        // What open hands back is on disk.
        let committed = journal.next_lsn().0;
        let durable = Durable {
            journal: Box::new(journal),
            encode: encode_caught::<M>,
            decode: |bytes: &[u8]| decode_caught(bytes).ok(),
            encode_out: encode_caught::<M>,
            registry: self.registry,
            error: None,
            stopped: false,
            pending: BTreeMap::new(),
            violations: Vec::new(),
            quiet: true,
            spawning: false,
            restarts: BTreeSet::new(),
            restart_of: BTreeMap::new(),
            pid_mark: None,
            otp_mark: None,
            tie: None,
            tied: None,
            codecs: self.codecs,
            policy: self.policy,
            committed,
            committing: Vec::new(),
            kept_from: None,
            layouts,
            layout_mark: None,
        };
        let mut recovery = Recovery {
            truncated,
            records: fold.records,
            ..Recovery::default()
        };
        {
            let k = sched.kernel_mut();
            if let Some(clock) = self.clock {
                k.clock = clock;
            }
            k.replay_signals = self.replay_signals;
            k.hooks = Some(Box::new(durable));
            // Children rebuilt from the journal receive copies of their parents'
            // messages before any spawn of this run.
            k.clone_in = Some(M::clone);
            fold.finish(k, &mut recovery)?;
            // The first pass finishes the turns the crash cut short (each
            // replayed process catches up, the exit signals of ends it had
            // journaled are applied) before timers fire: they fire after it,
            // as they would have at the start of the next pass.
            k.hold_timers = true;
            traced! {
                if let Some(tail) = &recovery.truncated {
                    tracing::warn!(
                        file = %tail.file.display(),
                        offset = tail.offset,
                        bytes = tail.bytes,
                        "torn tail cut"
                    );
                }
                tracing::info!(
                    records = recovery.records,
                    replayed = recovery.replayed.len(),
                    fast_forwarded = recovery.fast_forwarded.len(),
                    truncated = recovery.truncated.is_some(),
                    "recovery"
                );
            }
            let d = durable_mut(k).expect("just set");
            d.quiet = false;
            // This run's layouts, journaled (committed with the first pass).
            d.journal_layouts();
        }
        Ok((DurableScheduler { inner: sched }, recovery))
    }
}

/// A [`SimpleScheduler`] whose processes survive a crash of the program: every
/// input is journaled, and [`open`](DurableBuilder::open) rebuilds every process
/// from the journal. See the [module docs](crate::durable) for what is journaled and what is
/// guaranteed.
///
/// Its message type, and the arguments and results of its templates, must be
/// serde types; every template must be [registered](DurableBuilder::register).
pub struct DurableScheduler<M: 'static> {
    pub(super) inner: SimpleScheduler<M>,
}

impl<M> fmt::Debug for DurableScheduler<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableScheduler")
            .field("live", &self.inner.live())
            .finish()
    }
}

impl<M> DurableScheduler<M>
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    /// Starts registering templates; then [`open`](DurableBuilder::open) a journal.
    pub fn builder() -> DurableBuilder<M> {
        DurableBuilder {
            registry: BTreeMap::new(),
            options: JournalOptions::default(),
            policy: CommitPolicy::default(),
            replay_signals: false,
            changed: BTreeSet::new(),
            codecs: BTreeMap::new(),
            clock: None,
        }
    }

    /// The journal error that stopped the run: the error itself the first time,
    /// [`JournalError::Poisoned`] after.
    fn check(&mut self) -> Result<(), JournalError> {
        let d = self.durable_mut();
        if let Some(e) = d.error.take() {
            d.stopped = true;
            // Senders are refused from now on; mail not delivered is kept.
            self.inner.kernel_mut().stop_mail();
            return Err(e);
        }
        if d.stopped {
            return Err(JournalError::Poisoned);
        }
        Ok(())
    }

    /// Creates and starts a process (journaled). Its result is kept until taken
    /// ([`result`](Self::result) or [`result_of`](Self::result_of)), even
    /// when the handle is dropped: results survive crashes, handles do not.
    pub fn spawn<A: 'static, R: Payload, S: Sharing>(
        &mut self,
        template: &Template<M, M, A, R, S>,
        args: A,
    ) -> Result<Handle<R>, SpawnError> {
        self.spawning(|inner| inner.spawn(template, args))
            .map(Handle::keeping)
    }

    /// Creates and starts a process whose result nobody will read (journaled):
    /// it is freed when the process ends, and its records can go with it.
    pub fn spawn_detached<A: 'static, R: Payload, S: Sharing>(
        &mut self,
        template: &Template<M, M, A, R, S>,
        args: A,
    ) -> Result<Pid, SpawnError> {
        self.spawning(|inner| inner.spawn_detached(template, args))
    }

    /// Runs `spawn` (a spawn from outside, which starts the process at once:
    /// its creation is journaled as started), unless the run has stopped.
    fn spawning<T>(
        &mut self,
        spawn: impl FnOnce(&mut SimpleScheduler<M>) -> Result<T, SpawnError>,
    ) -> Result<T, SpawnError> {
        if self.is_stopped() {
            return Err(SpawnError::Stopped);
        }
        self.durable_mut().spawning = true;
        let spawned = spawn(&mut self.inner);
        self.durable_mut().spawning = false;
        spawned
    }

    /// Whether a journal error stopped the run.
    pub fn is_stopped(&self) -> bool {
        durable(self.inner.kernel()).is_some_and(|d| d.error.is_some() || d.stopped)
    }

    fn durable_mut(&mut self) -> &mut Durable<M, M> {
        durable_mut(self.inner.kernel_mut()).expect("durable")
    }

    /// Creates a process, not started (journaled).
    pub fn create<A: 'static, R: Payload, S: Sharing>(
        &mut self,
        template: &Template<M, M, A, R, S>,
        args: A,
    ) -> Result<Handle<R>, SpawnError> {
        if self.is_stopped() {
            return Err(SpawnError::Stopped);
        }
        self.inner.create(template, args).map(Handle::keeping)
    }

    /// Starts a created process (journaled).
    pub fn start(&mut self, pid: Pid) -> Result<(), StartError> {
        if self.is_stopped() {
            return Err(StartError::Stopped(pid));
        }
        self.inner.start(pid)
    }

    /// Sends from outside (journaled when delivered).
    pub fn send(&mut self, to: Pid, msg: M) -> Result<(), SendError<M>> {
        if self.is_stopped() {
            return Err(SendError::Stopped(msg));
        }
        self.inner.send(to, msg)
    }

    /// One pass, then one group commit of everything the pass journaled. A journal
    /// error stops the run: this and every later call return it.
    pub fn update(&mut self) -> Result<Pass, JournalError> {
        self.check()?;
        let pass = self.inner.update();
        self.inner.kernel_mut().release_timers();
        self.commit()?;
        Ok(pass)
    }

    fn commit(&mut self) -> Result<(), JournalError> {
        let k = self.inner.kernel_mut();
        let next_pid = k.next_pid();
        let d = durable_mut(k).expect("durable");
        let needed = d.needed_by_processes();
        if d.pid_mark.is_none_or(|mark| mark < needed) {
            // The records that go may be the last to name the highest pids.
            d.pid_mark = d.append(Record::NextPid { next: next_pid });
        }
        if d.otp_mark
            .is_none_or(|mark| needed.saturating_sub(mark) > OTP_STATE_LAG)
        {
            // Or the last to tell the toolkit's state: written whole when
            // older records could go (segments go only up to it), and again
            // once the oldest record needed is far past it, so that it costs
            // a walk of the processes every few thousand records at most.
            let encode = d.encode;
            let mut failed = None;
            let mut enc = |m: &M| {
                encode(m).unwrap_or_else(|e| {
                    failed = Some(e);
                    Vec::new()
                })
            };
            let state = crate::durable::otp::snapshot(self.inner.kernel(), &mut enc);
            let d = durable_mut(self.inner.kernel_mut()).expect("durable");
            if let Some(e) = failed {
                d.error.get_or_insert(JournalError::Encode(e));
            }
            // (No state: nothing older records made needs keeping.)
            d.otp_mark = state.and_then(|state| d.append(Record::OtpState(Box::new(state))));
        }
        let k = self.inner.kernel_mut();
        let d = durable_mut(k).expect("durable");
        // (From what processes needed before this commit's own records, and
        // the toolkit's state as it is now.)
        let needed = d.otp_mark.map_or(needed, |mark| mark.min(needed));
        if d.layout_mark.is_none_or(|mark| mark < needed) {
            // Or the last to say what the bytes of the records mean.
            d.journal_layouts();
        }
        if d.error.is_none() && !d.stopped {
            // Then segments that hold only records no process needs go.
            let needed = Lsn(needed);
            #[cfg(feature = "tracing")]
            let started = std::time::Instant::now();
            match d.journal.commit() {
                Ok(()) => {
                    let next = d.journal.next_lsn().0;
                    traced! {
                        if next > d.committed {
                            tracing::debug!(
                                lsn = next - 1,
                                records = next - d.committed,
                                micros = started.elapsed().as_micros() as u64,
                                "journal commit"
                            );
                        }
                    }
                    d.committed = next;
                    // Then the processes that waited for it perform their effects
                    // (in the next pass).
                    let committing = std::mem::take(&mut d.committing);
                    if let Err(e) = d.journal.release_before(needed) {
                        d.error = Some(e);
                    }
                    for pid in committing {
                        self.inner.kernel_mut().release(pid, Wait::Commit);
                    }
                }
                Err(e) => {
                    trace_event!(tracing::Level::ERROR, error = %e, "journal commit failed");
                    d.error = Some(e);
                }
            }
        }
        self.check()
    }

    /// Runs passes (each committed) until one runs nothing.
    pub fn run_until_idle(&mut self) -> Result<usize, JournalError> {
        let mut total = 0;
        loop {
            let pass = self.update()?;
            if pass.is_idle() {
                return Ok(total);
            }
            total += pass.ran;
        }
    }

    /// Runs until no process can run and none waits on an effect's future or a
    /// timer, every pass committed: between idle passes it blocks the thread
    /// until a future's waker fires or the next timer is due (see
    /// [`SimpleScheduler::run_blocking`]). A journal error stops it.
    pub fn run_blocking(&mut self) -> Result<usize, JournalError> {
        let mut total = 0;
        loop {
            total += self.run_until_idle()?;
            if !self.inner.kernel().wait_for_work() {
                return Ok(total);
            }
        }
    }

    /// The async [`run_blocking`](Self::run_blocking), every pass committed
    /// (see [`SimpleScheduler::run`]): between passes it awaits the next
    /// wake-up or timer without blocking the thread. A journal error stops it.
    pub async fn run(&mut self) -> Result<usize, JournalError> {
        crate::driver::run(self).await
    }

    /// A handle through which other threads and tasks send to this scheduler's
    /// processes (see [`Sender`] and [`SimpleScheduler::sender`]). Their
    /// messages are journaled when delivered, at the start of a pass, as a
    /// [`send`](Self::send) from outside.
    pub fn sender(&mut self) -> Sender<M>
    where
        M: Send,
    {
        self.inner.sender()
    }

    /// A [`Sender`] with a capacity of its own, if it is the first (see
    /// [`SimpleScheduler::sender_with_capacity`]).
    pub fn sender_with_capacity(&mut self, capacity: usize) -> Sender<M>
    where
        M: Send,
    {
        self.inner.sender_with_capacity(capacity)
    }

    /// Sets how many calls a process makes in one turn before it yields (see
    /// [`SimpleScheduler::set_budget`]).
    pub fn set_budget(&mut self, budget: u32) {
        self.inner.set_budget(budget);
    }

    /// Starts recording signals into a buffer that [`pull`](Self::pull) drains
    /// (see [`SimpleScheduler::record`]). Processes being replayed record theirs
    /// only if the builder's [`replay_signals`](DurableBuilder::replay_signals)
    /// says so.
    pub fn record(&mut self) {
        self.inner.record();
    }

    /// Sends every signal, in emission order, to `sink` (see
    /// [`SimpleScheduler::set_sink`]).
    pub fn set_sink(&mut self, sink: impl SignalSink<M> + 'static) {
        self.inner.set_sink(sink);
    }

    /// Stops recording signals.
    pub fn stop_recording(&mut self) {
        self.inner.stop_recording();
    }

    /// Drains the signals recorded since the last pull, in emission order.
    pub fn pull(&mut self) -> Vec<Signal<M>> {
        self.inner.pull()
    }

    /// Takes the result of an ended top-level process (journaled: its records are
    /// not needed any more).
    pub fn result<R: Payload>(&mut self, handle: &Handle<R>) -> Option<Result<R, ExitError>> {
        self.result_of(handle.pid())
    }

    /// Takes the result of an ended top-level process, by pid (for processes
    /// rebuilt from the journal, which have no handle yet). `None` while it runs,
    /// once taken, if its result is not an `R` (it then stays for the right
    /// type), or once a journal error stopped the run (taking it could not be
    /// journaled; reopen the journal to take it).
    pub fn result_of<R: Payload>(&mut self, pid: Pid) -> Option<Result<R, ExitError>> {
        if self.is_stopped() {
            // Taking it could not be journaled.
            return None;
        }
        let result = self.inner.kernel_mut().take_result(pid)?;
        let d = self.durable_mut();
        d.append(Record::Reaped { pid });
        d.clear_restart(pid);
        Some(result)
    }

    /// Where a process stands.
    pub fn status(&self, pid: Pid) -> Option<Status> {
        self.inner.status(pid)
    }

    /// How many processes exist.
    pub fn live(&self) -> usize {
        self.inner.live()
    }

    /// Takes the messages kept because they could not be delivered (journaled:
    /// they are kept across a crash until taken).
    pub fn take_undelivered(&mut self) -> Vec<Undelivered<M>> {
        let taken = self.inner.take_undelivered();
        if !taken.is_empty() {
            let d = self.durable_mut();
            if d.append(Record::UndeliveredTaken).is_some() {
                d.kept_from = None;
            }
        }
        taken
    }

    /// Processes held because their calls did not match their records.
    pub fn violations(&self) -> &[DeterminismViolation] {
        durable(self.inner.kernel())
            .map(|d| d.violations.as_slice())
            .unwrap_or(&[])
    }

    /// The earliest deadline of an armed timer.
    pub fn next_deadline(&self) -> Option<crate::Time> {
        self.inner.next_deadline()
    }

    /// The scheduler underneath, for introspection.
    pub fn scheduler(&self) -> &SimpleScheduler<M> {
        &self.inner
    }
}

impl<M> crate::driver::Drive for DurableScheduler<M>
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    type Error = JournalError;

    fn pass(&mut self) -> Result<usize, JournalError> {
        Ok(self.update()?.ran)
    }

    fn idle(&self) -> crate::kernel::pass::Idle {
        self.inner.kernel().idle()
    }

    fn wakes(&self) -> &crate::kernel::time::WakeQueue {
        &self.inner.kernel().wakes
    }
}
