//! Agents (Elixir's `Agent`): a process that holds a value, read and changed
//! by the functions its callers send it, one at a time, in arrival order.
//!
//! An agent is a [`Server`] of this module's own: [`Agent::template`] makes
//! its process's template (its argument is the first value), and an
//! [`Agent`] is its typed handle. [`get`](Agent::get),
//! [`update`](Agent::update) and [`get_and_update`](Agent::get_and_update)
//! wait for the answer (Elixir's default timeout, 5 s; the `_timeout` forms
//! take another), [`cast`](Agent::cast) does not, [`stop`](Agent::stop) stops
//! it. A function that panics fails the agent (its callers see
//! `CallError::Down`), as a crash in an Elixir agent's function does.
//!
//! An agent of another core of a [`Runtime`](crate::runtime::Runtime) is
//! reached with the `_across` forms ([`get_across`](Agent::get_across),
//! [`update_across`](Agent::update_across),
//! [`get_and_update_across`](Agent::get_and_update_across),
//! [`cast_across`](Agent::cast_across)): their functions and answers cross
//! cores, so they are `Send` (the value itself stays on its core); `stop`
//! works on any core. The plain forms give [`CallError::OtherCore`] there
//! (a plain `cast` panics rather than lose its function).
//!
//! ```
//! use chronoflow::otp::agent::Agent;
//! use chronoflow::{Ctx, SimpleScheduler, Template};
//!
//! let mut sched = SimpleScheduler::<()>::new();
//! let counter = Agent::<u64>::new(sched.spawn(&Agent::<u64>::template("counter"), 1).unwrap().pid());
//! let client = Template::local("client", move |ctx: &mut Ctx<()>, ()| {
//!     counter.cast(ctx, |n| *n += 1);
//!     let doubled = counter.update(ctx, |n| *n *= 2).unwrap();
//!     let old = counter.get_and_update(ctx, |n| std::mem::replace(n, 0)).unwrap();
//!     (doubled, old, counter.get(ctx, |n| *n).unwrap())
//! });
//! let c = sched.spawn(&client, ()).unwrap();
//! sched.run_until_idle();
//! assert_eq!(sched.result(&c), Some(Ok((4, 4, 0))));
//! ```

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::engine::stackful::context::Ctx;
use crate::engine::stackful::template::{Local, Template};
use crate::otp::call::CallError;
use crate::otp::server::{
    self, DEFAULT_CALL_TIMEOUT, Flow, Host, Init, Reply, Server, ServerCtx, ServerRef, Stackful,
};
use crate::reason::Reason;
use crate::signal::Pid;

/// A function sent to an agent, that answers.
type Call<T> = Box<dyn FnOnce(&mut T) -> Box<dyn Any>>;

/// A function sent to an agent, that does not.
type Cast<T> = Box<dyn FnOnce(&mut T)>;

/// The agent's process: a server holding the value.
struct Holder<T, M, E> {
    value: T,
    _msg: PhantomData<fn() -> (M, E)>,
}

impl<T: 'static, M: 'static, E: Host> Server for Holder<T, M, E> {
    type Engine = E;
    type Msg = M;
    type Args = T;
    type Call = Call<T>;
    type Reply = Box<dyn Any>;
    type Cast = Cast<T>;
    type Continue = ();

    fn init(_: &mut ServerCtx<Self>, value: T) -> Init<Self> {
        Init::Ok(Holder {
            value,
            _msg: PhantomData,
        })
    }

    fn handle_call(
        &mut self,
        _: &mut ServerCtx<Self>,
        f: Call<T>,
        _: server::From<Box<dyn Any>>,
    ) -> Reply<Self> {
        Reply::Reply(f(&mut self.value))
    }

    fn handle_cast(&mut self, _: &mut ServerCtx<Self>, f: Cast<T>) -> Flow<Self> {
        f(&mut self.value);
        Flow::Continue
    }
}

/// The handle of an agent holding a `T`, on a scheduler of message type `M`,
/// whose process runs on engine `E` (see the [module](self)): its callers
/// may be processes of either engine's, or the scheduler's owner.
pub struct Agent<T, M = (), E = Stackful> {
    server: ServerRef<Holder<T, M, E>>,
}

impl<T: 'static, M: 'static> Agent<T, M, Stackful> {
    /// The template of agents holding a `T`, named `name`: spawn it with the
    /// first value.
    pub fn template(name: &str) -> Template<M, M, T, (), Local> {
        server::template::<Holder<T, M, Stackful>>(name)
    }
}

#[cfg(feature = "stackless")]
impl<T: 'static, M: 'static> Agent<T, M, server::Stackless> {
    /// The template of agents holding a `T` on stackless processes, named
    /// `name`: spawn it with the first value.
    pub fn stackless_template(name: &str) -> crate::StacklessTemplate<M, M, T, ()> {
        server::stackless_template::<Holder<T, M, server::Stackless>>(name)
    }
}

impl<T: 'static, M: 'static, E: Host> Agent<T, M, E> {
    /// The handle of agent `pid`.
    pub fn new(pid: Pid) -> Self {
        Agent {
            server: ServerRef::new(pid),
        }
    }

    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.server.pid()
    }

    /// What `f` makes of the value (Elixir's `Agent.get/3`).
    pub fn get<R: 'static>(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&T) -> R + 'static,
    ) -> Result<R, CallError> {
        self.get_timeout(ctx, f, Some(DEFAULT_CALL_TIMEOUT))
    }

    /// [`get`](Self::get), waiting at most `timeout` (`None`: forever).
    pub fn get_timeout<R: 'static>(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&T) -> R + 'static,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        self.ask(ctx, move |v| f(v), timeout)
    }

    /// Changes the value with `f`, and gives the new value (Elixir's
    /// `Agent.update/3` answers `:ok`; the new value saves a `get`).
    pub fn update(&self, ctx: &mut Ctx<M>, f: impl FnOnce(&mut T) + 'static) -> Result<T, CallError>
    where
        T: Clone,
    {
        self.update_timeout(ctx, f, Some(DEFAULT_CALL_TIMEOUT))
    }

    /// [`update`](Self::update), waiting at most `timeout`.
    pub fn update_timeout(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&mut T) + 'static,
        timeout: Option<Duration>,
    ) -> Result<T, CallError>
    where
        T: Clone,
    {
        self.ask(
            ctx,
            move |v| {
                f(v);
                v.clone()
            },
            timeout,
        )
    }

    /// Changes the value with `f`, and gives what `f` returns (Elixir's
    /// `Agent.get_and_update/3`).
    pub fn get_and_update<R: 'static>(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&mut T) -> R + 'static,
    ) -> Result<R, CallError> {
        self.get_and_update_timeout(ctx, f, Some(DEFAULT_CALL_TIMEOUT))
    }

    /// [`get_and_update`](Self::get_and_update), waiting at most `timeout`.
    pub fn get_and_update_timeout<R: 'static>(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&mut T) -> R + 'static,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        self.ask(ctx, f, timeout)
    }

    /// Changes the value with `f`, without waiting (Elixir's `Agent.cast/2`);
    /// to an agent that is not alive, nothing happens.
    pub fn cast(&self, ctx: &mut Ctx<M>, f: impl FnOnce(&mut T) + 'static) {
        self.server.cast(ctx, Box::new(f));
    }

    /// Stops it with `reason`, waiting for its end (Elixir's `Agent.stop/3`):
    /// the reason it ended with ([`Reason::NoProc`] if it was not alive).
    pub fn stop(&self, ctx: &mut Ctx<M>, reason: Reason) -> Reason {
        self.server.stop(ctx, reason)
    }

    /// Sends `f`, gives back what it made.
    fn ask<R: 'static>(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&mut T) -> R + 'static,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        let call: Call<T> = Box::new(move |v| Box::new(f(v)));
        answer_of(self.server.call_timeout(ctx, call, timeout))
    }
}

impl<T: 'static, M: 'static, E: Host> Agent<T, M, E> {
    /// [`get`](Self::get) of an agent of any core of a
    /// [`Runtime`](crate::runtime::Runtime) (Elixir's `Agent.get/3` of an
    /// agent on another node): `f` goes to the agent's core, and what it
    /// makes comes back, so both are `Send` (the value stays there). On one
    /// core it is `get`. (A plain `get` of an agent of another core gives
    /// [`CallError::OtherCore`] at once.)
    pub fn get_across<R: Send + 'static>(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&T) -> R + Send + 'static,
    ) -> Result<R, CallError> {
        self.get_across_timeout(ctx, f, Some(DEFAULT_CALL_TIMEOUT))
    }

    /// [`get_across`](Self::get_across), waiting at most `timeout` (`None`:
    /// forever).
    pub fn get_across_timeout<R: Send + 'static>(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&T) -> R + Send + 'static,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        self.ask_across(ctx, move |v| f(v), timeout)
    }

    /// [`update`](Self::update) of an agent of any core (Elixir's
    /// `Agent.update/3` of an agent on another node): `f` and the new value
    /// cross cores, so both are `Send`. On one core it is `update`.
    pub fn update_across(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&mut T) + Send + 'static,
    ) -> Result<T, CallError>
    where
        T: Clone + Send,
    {
        self.update_across_timeout(ctx, f, Some(DEFAULT_CALL_TIMEOUT))
    }

    /// [`update_across`](Self::update_across), waiting at most `timeout`.
    pub fn update_across_timeout(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&mut T) + Send + 'static,
        timeout: Option<Duration>,
    ) -> Result<T, CallError>
    where
        T: Clone + Send,
    {
        self.ask_across(
            ctx,
            move |v| {
                f(v);
                v.clone()
            },
            timeout,
        )
    }

    /// [`get_and_update`](Self::get_and_update) of an agent of any core
    /// (Elixir's `Agent.get_and_update/3` of an agent on another node): `f`
    /// and what it gives cross cores, so both are `Send`. On one core it is
    /// `get_and_update`.
    pub fn get_and_update_across<R: Send + 'static>(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&mut T) -> R + Send + 'static,
    ) -> Result<R, CallError> {
        self.get_and_update_across_timeout(ctx, f, Some(DEFAULT_CALL_TIMEOUT))
    }

    /// [`get_and_update_across`](Self::get_and_update_across), waiting at
    /// most `timeout`.
    pub fn get_and_update_across_timeout<R: Send + 'static>(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&mut T) -> R + Send + 'static,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        self.ask_across(ctx, f, timeout)
    }

    /// [`cast`](Self::cast) to an agent of any core (Elixir's `Agent.cast/2`
    /// to an agent on another node): `f` crosses cores, so it is `Send`. It
    /// reaches the agent in order with this process's messages to it. On one
    /// core it is `cast`. (A plain `cast` to an agent of another core panics
    /// rather than lose `f`.)
    pub fn cast_across(&self, ctx: &mut Ctx<M>, f: impl FnOnce(&mut T) + Send + 'static) {
        self.server
            .cast_made_across(ctx, move || -> Cast<T> { Box::new(f) });
    }

    /// Sends `f` to an agent of any core, gives back what it made: the
    /// function made into the agent's call on the agent's core, its answer
    /// shipped back as the `R` it is.
    fn ask_across<R: Send + 'static>(
        &self,
        ctx: &mut Ctx<M>,
        f: impl FnOnce(&mut T) -> R + Send + 'static,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        if !ctx.k().elsewhere(self.pid()) {
            return self.ask(ctx, f, timeout);
        }
        let server = self.server;
        ctx.request_made_across(
            self.pid(),
            move || {
                server.call_of(Box::new(move |v: &mut T| -> Box<dyn Any> {
                    Box::new(f(v))
                }))
            },
            ship_answer::<R>,
            timeout,
        )
    }
}

/// How an agent's answer `R` goes back to a caller of another core: the
/// agent's reply (a `Box<dyn Any>`, given boxed) holds it; it is given back
/// if it does not.
fn ship_answer<R: Send + 'static>(
    reply: Box<dyn Any>,
) -> Result<Box<dyn Any + Send>, Box<dyn Any>> {
    let answer: Box<dyn Any> = *reply.downcast::<Box<dyn Any>>()?;
    match answer.downcast::<R>() {
        Ok(r) => Ok(r),
        Err(answer) => Err(Box::new(answer)),
    }
}

/// What an agent's function made: an `R` (the function made it).
fn answer_of<R: 'static>(answer: Result<Box<dyn Any>, CallError>) -> Result<R, CallError> {
    answer?
        .downcast::<R>()
        .map(|r| *r)
        .map_err(|_| CallError::ReplyType)
}

impl<M: 'static> crate::SimpleScheduler<M> {
    /// Sends agent `agent` the function `f` from outside, and gives back what
    /// it made of the value (its `get`, `update` and `get_and_update` in
    /// one), driving the scheduler until the answer comes (as
    /// [`call_server`](Self::call_server) does).
    pub fn call_agent<T: 'static, E: Host, R: 'static>(
        &mut self,
        agent: &Agent<T, M, E>,
        f: impl FnOnce(&mut T) -> R + 'static,
    ) -> Result<R, CallError> {
        let call: Call<T> = Box::new(move |v| Box::new(f(v)));
        answer_of(self.call_server(&agent.server, call))
    }

    /// Casts `f` to agent `agent` from outside (no answer, no wait).
    pub fn cast_agent<T: 'static, E: Host>(
        &mut self,
        agent: &Agent<T, M, E>,
        f: impl FnOnce(&mut T) + 'static,
    ) {
        self.cast_server(&agent.server, Box::new(f));
    }
}

impl<T, M, E> Clone for Agent<T, M, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, M, E> Copy for Agent<T, M, E> {}

impl<T, M, E> PartialEq for Agent<T, M, E> {
    fn eq(&self, other: &Self) -> bool {
        self.server == other.server
    }
}

impl<T, M, E> Eq for Agent<T, M, E> {}

impl<T, M, E> fmt::Debug for Agent<T, M, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Agent({:?})", self.server)
    }
}
