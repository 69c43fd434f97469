//! Children: spawning, joining, and moving on to another entry (a transition).

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::engine::stackful::context::Ctx;
use crate::engine::stackful::template::{Sharing, Template};
use crate::error::{JoinError, SpawnError};
use crate::kernel::Wait;
use crate::kernel::hooks::{Call, Expect, Replayed};
use crate::signal::{Payload, Pid, SignalData, Value};
use crate::template::Spawnable;

/// A handle on a child process, returned by [`Ctx::spawn`]; [`Ctx::join`] gives
/// back the child's result of type `R`. It is a pid with a type: copy it, keep it
/// in a transition's arguments (it is serde, as its pid), join it once.
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[must_use = "a child must be joined: a parent that returns with unjoined children fails"]
pub struct Child<R> {
    pid: Pid,
    #[serde(skip)]
    _result: PhantomData<fn() -> R>,
}

impl<R> Clone for Child<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Child<R> {}

impl<R> Child<R> {
    pub(crate) fn new(pid: Pid) -> Self {
        Child {
            pid,
            _result: PhantomData,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

impl<I: 'static, O: 'static> Ctx<I, O> {
    /// Spawns a child from `template` with `args`: a SPAWN signal, then the child's
    /// START. The child gets its own pid, starts with a copy of this process's
    /// unconsumed inbox, and from now on receives every message this process
    /// receives. It must be joined before this process returns.
    pub fn spawn<A: 'static, R: Payload>(
        &mut self,
        template: &impl Spawnable<I, O, A, R>,
        args: A,
    ) -> Result<Child<R>, SpawnError>
    where
        I: Clone,
    {
        self.tick();
        let me = self.me;
        let my_pid = self.pid();
        self.k().clone_in = Some(I::clone);
        let name = template.template_name().clone();
        // What a durable scheduler refuses, it refuses live and in replay alike,
        // with nothing journaled. What it takes, a replay checks against the
        // journal, arguments included (as their encoding).
        let encoded = self.k().spawning(&name, &args, template.stackless())?;
        if let Replayed::Spawned(child) = self.replayed(|| Expect::Spawn {
            template: &name,
            args: encoded.as_deref(),
        }) {
            drop(args);
            return self.respawn(child);
        }
        let child = template.create_in(self.k(), args, Some(my_pid))?;
        // The child's CREATE record is this process's step.
        self.record(|| Call::Spawn);
        Ok(Child::new(self.k().adopt(me, child)))
    }

    /// A spawn in replay: the child was rebuilt from the journal when the
    /// scheduler opened (fast-forwarded, or replaying); only the handle is new.
    #[cold]
    fn respawn<R>(&mut self, child: Pid) -> Result<Child<R>, SpawnError> {
        let me = self.me;
        if !self.p().children().contains(&child) {
            self.violation(
                format!("a spawn of {child}"),
                format!(
                    "a spawn that the journal does not hold as a child of {}",
                    self.pid()
                ),
            );
        }
        self.k().emit(me, || SignalData::Spawn { child });
        Ok(Child {
            pid: child,
            _result: PhantomData,
        })
    }

    /// Waits for `child` to stop and returns its result (a JOIN signal). A child
    /// that failed or was killed gives the reason as an error.
    pub fn join<R: Payload>(&mut self, child: Child<R>) -> Result<R, JoinError> {
        self.join_as(child.pid, |r| r.downcast::<R>().map(|r| *r))
    }

    /// Waits for child `pid` to stop and takes its result whatever its type
    /// (a JOIN): a parent that stopped a child it holds no typed handle of.
    pub(crate) fn join_any(&mut self, pid: Pid) -> Result<Box<dyn std::any::Any>, JoinError> {
        self.join_as(pid, Ok)
    }

    /// [`join`](Self::join), the result made a `T` by `cast`.
    fn join_as<T>(
        &mut self,
        pid: Pid,
        cast: impl Fn(Box<dyn std::any::Any>) -> Result<T, Box<dyn std::any::Any>>,
    ) -> Result<T, JoinError> {
        self.tick();
        if !self.p().children().contains(&pid) {
            return Err(JoinError::NotAChild(pid));
        }
        let replayed = matches!(self.replayed(|| Expect::Join(pid)), Replayed::Done);
        loop {
            let me = self.me;
            if let Some(result) = self.k().take_child_as(me, pid, &cast) {
                if !replayed
                    && !matches!(
                        result,
                        Err(JoinError::ResultType(_) | JoinError::NotAChild(_))
                    )
                {
                    self.record(|| Call::Join(pid));
                }
                return result;
            }
            if self.cannot_wait() {
                // It cannot wait (a killed parent's children are stopped with it).
                return Err(JoinError::Exited(crate::error::ExitError::Killed(format!(
                    "joined while its parent {} unwound",
                    self.pid()
                ))));
            }
            self.suspend(Wait::Join(pid));
        }
    }

    /// Called by a transition before the new entry runs: TRANSITION, and the new
    /// template's options.
    pub(crate) fn begin_transition<A: Payload, R, S: Sharing>(
        &mut self,
        template: &Template<I, O, A, R, S>,
        args: &A,
    ) {
        self.tick();
        let name = template.opts.name.clone();
        // Encoded only for a layer that journals it, by that layer's
        // registration of the template (arguments need be serde types only
        // there).
        let encoded = match self.hooks() {
            None => Vec::new(),
            Some((hooks, _)) => match hooks.encode_args(&name, args) {
                Some(encoded) => encoded,
                None => self.violation(
                    format!(
                        "no registration of template `{name}` whose arguments encode this value"
                    ),
                    format!("a transition to `{name}`"),
                ),
            },
        };
        let replayed = matches!(
            self.replayed(|| Expect::Transition {
                template: &name,
                args: &encoded,
            }),
            Replayed::Done
        );
        if !replayed {
            let next_pid = self.k().next_pid();
            // A snapshot of this process: its inbox and children with it.
            self.record(|| Call::Transition {
                template: &name,
                args: &encoded,
                next_pid,
            });
        }
        let p = self.p();
        p.route = template.opts.route.clone();
        p.inbox
            .set_policy(template.opts.capacity, template.opts.overflow);
        let me = self.me;
        if self.p().has_waiting_senders() {
            // The new entry's inbox may have room, or no back-pressure: the
            // senders waiting for room try again.
            self.k().wake_all_senders(me);
        }
        let entry = template.opts.name.clone();
        self.k().emit(me, || SignalData::Transition {
            entry,
            args: Value::text_of(args),
        });
    }
}
