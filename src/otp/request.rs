//! Typed system requests: how a process asks a server something without the
//! request being a variant of the scheduler's message type `M` (OTP's
//! `gen_server:call` to a server that is not of the caller's protocol, such as
//! `supervisor:which_children/1`).
//!
//! A request is a value of any `'static` type that says its reply's type
//! ([`RequestType`]). [`Ctx::request`] puts it in the server's system queue
//! (beside its inbox, in arrival order with its messages, as DOWN and EXIT
//! are), monitors the server and waits for the reply, the server's DOWN or the
//! timeout, as [`Ctx::call`] does: the reply travels tagged with the monitor's
//! reference, so that it is never taken for another's.
//!
//! The server reads it as [`Mail::Request`] (from [`Ctx::receive_mail`] and
//! its kin: a plain [`Ctx::receive`] never sees it), takes its body by type
//! with [`Request::take`], and answers with [`Ctx::reply`]; or refuses a type
//! it does not know with [`Ctx::refuse`] (the caller gets
//! [`CallError::Unhandled`]). **A plain process** that reads its mail sees the
//! request too, and may answer it; one that drops it leaves its caller
//! waiting until the call's timeout or the process's end (OTP: a call to a
//! process that never answers). Chosen over answering every unread request
//! with an error: a process of the user's own may serve requests in its mail
//! loop, and typed servers read them the same way.
//!
//! From the scheduler's owner, [`SimpleScheduler::request`] asks, and drives
//! the scheduler until the answer comes.
//!
//! [`Ctx::request`]: crate::Ctx::request
//! [`Ctx::call`]: crate::Ctx::call
//! [`Ctx::receive_mail`]: crate::Ctx::receive_mail
//! [`Ctx::receive`]: crate::Ctx::receive
//! [`Ctx::reply`]: crate::Ctx::reply
//! [`Ctx::refuse`]: crate::Ctx::refuse
//! [`Mail::Request`]: crate::Mail::Request

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::engine::stackful::context::Ctx;
use crate::engine::stackful::template::Template;
use crate::otp::alive;
use crate::otp::call::{self, CallError, ReplyTo};
use crate::otp::mail::Notice;
use crate::reason::Reason;
use crate::scheduler::SimpleScheduler;
use crate::signal::Pid;

/// A type that can be sent as a request with [`Ctx::request`](crate::Ctx::request):
/// it names the type of its reply.
///
/// ```
/// use chronoflow::RequestType;
///
/// struct Lookup(String);
/// impl RequestType for Lookup {
///     type Reply = Option<u64>;
/// }
/// ```
pub trait RequestType: 'static {
    /// What the server answers.
    type Reply: 'static;
}

/// A request as its server receives it ([`Mail::Request`](crate::Mail::Request)):
/// who asks, and a body of some [`RequestType`], taken by type.
///
/// A clone names the same request (its body is shared, and can be taken
/// once); two requests are equal when they are the same call.
#[derive(Clone)]
pub struct Request {
    from: Pid,
    tag: u64,
    type_id: TypeId,
    type_name: &'static str,
    body: Rc<Cell<Option<Box<dyn Any>>>>,
}

impl Request {
    pub(crate) fn new<Q: RequestType>(from: Pid, tag: u64, body: Q) -> Request {
        Request {
            from,
            tag,
            type_id: TypeId::of::<Q>(),
            type_name: std::any::type_name::<Q>(),
            body: Rc::new(Cell::new(Some(Box::new(body)))),
        }
    }

    /// The caller's pid.
    pub fn from(&self) -> Pid {
        self.from
    }

    /// Whether its body is of type `Q`.
    pub fn is<Q: RequestType>(&self) -> bool {
        self.type_id == TypeId::of::<Q>()
    }

    /// The name of its body's type (for logs).
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Its body, if it is of type `Q` and was not taken before, with where to
    /// send the reply (see [`Ctx::reply`](crate::Ctx::reply)).
    pub fn take<Q: RequestType>(&self) -> Option<(Q, ReplyTo<Q::Reply>)> {
        if !self.is::<Q>() {
            return None;
        }
        let body = self.body.take()?.downcast::<Q>().ok()?;
        Some((*body, ReplyTo::new(self.from, self.tag)))
    }
}

impl PartialEq for Request {
    fn eq(&self, other: &Request) -> bool {
        (self.from, self.tag) == (other.from, other.tag)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Request({} from {}, #{})",
            self.type_name, self.from, self.tag
        )
    }
}

impl<I: 'static, O: 'static> Ctx<I, O> {
    /// Sends `request` to `server`'s system queue and waits for its reply
    /// (OTP's `gen_server:call/3` with a request outside the caller's message
    /// type), at most `timeout` on the scheduler's clock (`None`: forever).
    ///
    /// As [`call`](Self::call): the server is monitored meanwhile, so that its
    /// end gives [`CallError::NoProc`] or [`CallError::Down`]; a late reply is
    /// dropped unread; other mail waits in its order. A server that refuses it
    /// gives [`CallError::Unhandled`]. A request to oneself is
    /// [`CallError::CallingSelf`] at once (OTP's `calling_self`).
    pub fn request<Q: RequestType>(
        &mut self,
        server: Pid,
        request: Q,
        timeout: Option<Duration>,
    ) -> Result<Q::Reply, CallError> {
        self.otp_call("request");
        let me = self.me;
        // (The steps of `call`: the request goes to the server's system
        // queue instead of its inbox, and a refusal is one more outcome.)
        let (monitor, body) = call::begin(self.k(), me, server, |to: ReplyTo<Q::Reply>| {
            Request::new(to.pid(), to.tag(), request)
        })?;
        if let Some(s) = alive(self.k(), server) {
            self.k().push_sys(s, 0, Notice::Request(body).boxed());
        }
        self.await_reply(monitor, timeout)
    }

    /// Refuses `request`: its caller's [`request`](Self::request) ends with
    /// [`CallError::Unhandled`] (unless it is over, or answered already).
    pub fn refuse(&mut self, request: &Request) {
        self.otp_call("refuse");
        refuse(self.k(), request);
    }
}

/// Sends `request`'s caller its refusal, if it is alive.
pub(crate) fn refuse<I: 'static, O: 'static>(
    k: &mut crate::kernel::Kernel<I, O>,
    request: &Request,
) {
    if let Some(p) = alive(k, request.from) {
        k.push_sys(p, request.tag, Box::new(call::Refused));
    }
}

impl<M: 'static> SimpleScheduler<M> {
    /// Sends `request` to `server` from outside and drives the scheduler
    /// ([`update`](Self::update) passes) until the answer comes.
    ///
    /// The scheduler's owner has no mailbox to wait in: the request is made by
    /// a short-lived process of its own (spawned detached, a few pages of
    /// stack), exactly as [`Ctx::request`](crate::Ctx::request) makes it. If a
    /// pass runs nothing before the answer came (every process waits, for
    /// something that only the owner can bring: a message, the clock moved),
    /// that process is ended and the request gives [`CallError::Timeout`].
    pub fn request<Q: RequestType>(
        &mut self,
        server: Pid,
        request: Q,
    ) -> Result<Q::Reply, CallError> {
        type Slot<R> = Rc<Cell<Option<Result<R, CallError>>>>;
        let answer: Slot<Q::Reply> = Rc::new(Cell::new(None));
        let input = Rc::new(Cell::new(Some(request)));
        let (out, q) = (answer.clone(), input.clone());
        let asker = Template::<M, M, (), (), crate::Local>::local("request", move |ctx, ()| {
            if let Some(q) = q.take() {
                out.set(Some(ctx.request(server, q, None)));
            }
        })
        .stack_size(64 * 1024);
        let pid = match self.spawn_detached(&asker, ()) {
            Ok(pid) => pid,
            Err(e) => return Err(CallError::Down(Reason::Failed(e.to_string()))),
        };
        loop {
            let pass = self.update();
            if let Some(answer) = answer.take() {
                return answer;
            }
            if pass.is_idle() {
                self.exit_signal(pid, Reason::Kill);
                return Err(CallError::Timeout);
            }
        }
    }
}
