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
//! Across the cores of a [`Runtime`](crate::runtime::Runtime),
//! [`Ctx::request_across`] asks a server of any core (the request and its
//! reply `Send`): the request travels to the server's core and waits in its
//! system queue there as a local one does, and knows that its reply (or
//! refusal) goes back to another core. A plain `request` to a process of
//! another core gives [`CallError::OtherCore`].
//!
//! [`Ctx::request`]: crate::Ctx::request
//! [`Ctx::request_across`]: crate::Ctx::request_across
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
use crate::kernel::hooks::Codec;
use crate::kernel::{Kernel, PPtr};
use crate::otp::alive;
use crate::otp::call::{self, CallError, ReplyTo};
use crate::otp::mail::{MonitorRef, Notice};
use crate::otp::monitors;
use crate::otp::record::{Answer, Ask};
use crate::reason::Reason;
use crate::scheduler::SimpleScheduler;
use crate::signal::{DurablePayload, Pid};
use serde::Serialize;
use serde::de::DeserializeOwned;

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

/// A request that a durable scheduler journals
/// ([`Ctx::durable_request`](crate::Ctx::durable_request)): it and its reply
/// are serde types. Register it with
/// [`DurableBuilder::request`](crate::durable::DurableBuilder::request).
pub trait DurableRequest:
    RequestType<Reply: DurablePayload> + Serialize + DeserializeOwned
{
}

impl<Q: RequestType<Reply: DurablePayload> + Serialize + DeserializeOwned> DurableRequest for Q {}

/// How requests of type `Q` travel encoded.
pub(crate) fn codec<Q: DurableRequest>() -> Codec {
    Codec {
        name: std::any::type_name::<Q>(),
        decode: |bytes| {
            let q: Q = decode_caught(bytes)?;
            Some(Box::new(q))
        },
        encode_reply: call::encode_reply::<Q::Reply>,
    }
}

/// Decodes a value; `None` if it does not decode, or its `Deserialize`
/// panics.
fn decode_caught<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match std::panic::catch_unwind(|| postcard::from_bytes(bytes)) {
        Ok(decoded) => decoded.ok(),
        Err(payload) => {
            crate::kernel::pass::forget_quietly(payload);
            None
        }
    }
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
    /// What its clones share (in the one allocation its body needs anyway):
    /// a request stays three words, so that the notices that carry one (and
    /// every system queue item, which holds a notice inline) stay small.
    shared: Rc<Shared>,
}

/// The part of a [`Request`] its clones share.
struct Shared {
    type_id: TypeId,
    type_name: &'static str,
    body: Cell<Option<Box<dyn Any>>>,
    /// What few requests have (a durable one, one from another core).
    rare: Option<Rare>,
}

/// The rarely used part of a [`Request`].
enum Rare {
    /// A durable request's: its body encoded, and how its reply is.
    Durable(Box<[u8]>, call::EncodeReply),
    /// A request from a process of another core: how its reply is made
    /// `Send`, to go back there.
    Across(call::ShipReply),
}

impl Request {
    pub(crate) fn new<Q: RequestType>(from: Pid, tag: u64, body: Q) -> Request {
        Request::with(from, tag, body, None)
    }

    fn with<Q: RequestType>(from: Pid, tag: u64, body: Q, rare: Option<Rare>) -> Request {
        Request {
            from,
            tag,
            shared: Rc::new(Shared {
                type_id: TypeId::of::<Q>(),
                type_name: std::any::type_name::<Q>(),
                body: Cell::new(Some(Box::new(body))),
                rare,
            }),
        }
    }

    /// A request from `from`, a process of another core: its reply goes
    /// back there as `ship` makes it `Send`.
    fn from_elsewhere<Q: RequestType>(
        from: Pid,
        tag: u64,
        body: Q,
        ship: call::ShipReply,
    ) -> Request {
        Request::with(from, tag, body, Some(Rare::Across(ship)))
    }

    /// A durable request, from its encoded body: `None` if it does not
    /// decode.
    pub(crate) fn decoded(from: Pid, tag: u64, codec: Codec, bytes: &[u8]) -> Option<Request> {
        let body = (codec.decode)(bytes)?;
        Some(Request {
            from,
            tag,
            shared: Rc::new(Shared {
                type_id: (*body).type_id(),
                type_name: codec.name,
                body: Cell::new(Some(body)),
                rare: Some(Rare::Durable(bytes.into(), codec.encode_reply)),
            }),
        })
    }

    /// Its caller's tag.
    pub(crate) fn tag(&self) -> u64 {
        self.tag
    }

    /// A durable request's body, encoded.
    pub(crate) fn encoded(&self) -> Option<&[u8]> {
        match &self.shared.rare {
            Some(Rare::Durable(bytes, _)) => Some(bytes),
            _ => None,
        }
    }

    /// The caller's pid.
    pub fn from(&self) -> Pid {
        self.from
    }

    /// Whether its body is of type `Q`.
    pub fn is<Q: RequestType>(&self) -> bool {
        self.shared.type_id == TypeId::of::<Q>()
    }

    /// The name of its body's type (for logs).
    pub fn type_name(&self) -> &'static str {
        self.shared.type_name
    }

    /// Its body, if it is of type `Q` and was not taken before, with where to
    /// send the reply (see [`Ctx::reply`](crate::Ctx::reply)).
    pub fn take<Q: RequestType>(&self) -> Option<(Q, ReplyTo<Q::Reply>)> {
        if !self.is::<Q>() {
            return None;
        }
        let body = self.shared.body.take()?.downcast::<Q>().ok()?;
        let to = match &self.shared.rare {
            None => ReplyTo::new(self.from, self.tag),
            Some(Rare::Durable(_, encode)) => ReplyTo::with_encoder(self.from, self.tag, *encode),
            Some(Rare::Across(ship)) => ReplyTo::shipping(self.from, self.tag, *ship),
        };
        Some((*body, to))
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
            self.shared.type_name, self.from, self.tag
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
    /// [`CallError::CallingSelf`] at once (OTP's `calling_self`); one to a
    /// process of another core of a [`Runtime`](crate::runtime::Runtime) is
    /// [`CallError::OtherCore`] at once (ask it with
    /// [`request_across`](Self::request_across)).
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
            self.k()
                .push_sys_running(s, 0, move || Notice::Request(body).boxed());
        }
        self.await_reply(monitor, timeout)
    }

    /// [`request`](Self::request) to a server of any core of a
    /// [`Runtime`](crate::runtime::Runtime) (OTP's `gen_server:call/3` to a
    /// process of another node): the request and its reply cross cores, so
    /// both are `Send`. The server takes it from its system queue and answers
    /// (or refuses) it exactly as a request made on its own core; the answer
    /// comes back to this core.
    ///
    /// As `request`: the server is monitored meanwhile (one that is not
    /// alive on its core gives [`CallError::NoProc`], one that ends before
    /// it answers [`CallError::Down`]), a reply later than the timeout is
    /// dropped, a refusal is [`CallError::Unhandled`]. On one core it is
    /// `request`. (A plain `request` to a process of another core gives
    /// [`CallError::OtherCore`] at once.)
    pub fn request_across<Q>(
        &mut self,
        server: Pid,
        request: Q,
        timeout: Option<Duration>,
    ) -> Result<Q::Reply, CallError>
    where
        Q: RequestType + Send,
        Q::Reply: Send,
    {
        self.request_made_across(
            server,
            move || request,
            call::ship_reply::<Q::Reply>,
            timeout,
        )
    }

    /// A typed request to a server of another core, made there by `make`,
    /// whose reply comes back as `ship` makes it (an `R`): see
    /// [`begin_across`]. (To a server of this core, the reply is a
    /// `Q::Reply`: a caller whose `R` is another asks this only of a server
    /// of another core.)
    pub(crate) fn request_made_across<Q: RequestType, R: 'static>(
        &mut self,
        server: Pid,
        make: impl FnOnce() -> Q + Send + 'static,
        ship: call::ShipReply,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        self.otp_call("request_across");
        let me = self.me;
        let monitor = begin_across(self.k(), me, server, make, ship)?;
        self.await_reply(monitor, timeout)
    }

    /// [`request`](Self::request), journaled by a durable scheduler: a
    /// durable process asks with this (`Q` and its reply are serde types, and
    /// `Q` is registered with
    /// [`DurableBuilder::request`](crate::durable::DurableBuilder::request)),
    /// as [`durable_call`](Self::durable_call) calls. On a plain scheduler it
    /// is `request`.
    pub fn durable_request<Q: DurableRequest>(
        &mut self,
        server: Pid,
        request: Q,
        timeout: Option<Duration>,
    ) -> Result<Q::Reply, CallError> {
        if !self.hooked() {
            return self.request(server, request, timeout);
        }
        self.tick();
        let (me, my_pid) = (self.me, self.pid());
        let codec = self.registered::<Q>("durable_request");
        let Ok(body) = postcard::to_allocvec(&request) else {
            self.otp_unencodable();
        };
        let ask = Ask::Request {
            server,
            type_name: codec.name.to_string(),
            body,
        };
        let tag = match self.otp_replayed(&ask) {
            Some((Answer::Called(begun), _)) => begun?,
            Some(_) => self.otp_mismatch(&ask),
            None => {
                let begun = call::check(self.k(), my_pid, server);
                if let Err(e) = &begun {
                    self.otp_record(ask, Answer::Called(Err(e.clone())), None);
                    return Err(e.clone());
                }
                let tag = crate::otp::table(self.k()).new_ref();
                let Ask::Request { body, .. } = &ask else {
                    unreachable!("a request")
                };
                let body = Request::decoded(my_pid, tag, codec, body)
                    .expect("a request decodes as it was encoded");
                monitors::monitor_as(self.k(), me, server, tag);
                self.otp_record(ask, Answer::Called(Ok(tag)), None);
                if let Some(s) = alive(self.k(), server) {
                    self.k()
                        .push_sys_running(s, 0, move || Notice::Request(body).boxed());
                }
                tag
            }
        };
        self.await_durable_reply(MonitorRef(tag), timeout)
    }

    /// Puts `body` in `to`'s system queue as a request that is no call
    /// (nothing waits for its answer: a server's cast, a stop), if `to` is
    /// alive; journaled by a durable scheduler (`Q` registered with
    /// [`DurableBuilder::request`](crate::durable::DurableBuilder::request)).
    pub(crate) fn durable_post<Q: DurableRequest>(&mut self, to: Pid, body: Q) {
        let my_pid = self.pid();
        if !self.hooked() {
            self.tick();
            post(self.k(), my_pid, to, body);
            return;
        }
        let codec = self.registered::<Q>("a durable cast");
        let Ok(bytes) = postcard::to_allocvec(&body) else {
            self.otp_unencodable();
        };
        drop(body);
        self.journaled(
            || Ask::Post {
                to,
                type_name: codec.name.to_string(),
                body: bytes.clone(),
            },
            |c| {
                if let Some(s) = alive(c.k(), to) {
                    let request = Request::decoded(my_pid, 0, codec, &bytes)
                        .expect("a request decodes as it was encoded");
                    c.k()
                        .push_sys_running(s, 0, move || Notice::Request(request).boxed());
                }
            },
            |()| Answer::Done,
            |a| matches!(a, Answer::Done).then_some(()),
        );
    }

    /// The codec of request type `Q`, which a durable scheduler must know
    /// (registered with `DurableBuilder::request`): else `what` holds this
    /// process.
    fn registered<Q: DurableRequest>(&mut self, what: &str) -> Codec {
        let codec = codec::<Q>();
        if self.codec(codec.name).is_none() {
            self.violation(
                format!(
                    "no record of it: the request type {} is not registered with DurableBuilder::request",
                    codec.name
                ),
                what.into(),
            );
        }
        codec
    }

    /// Refuses `request`: its caller's [`request`](Self::request) ends with
    /// [`CallError::Unhandled`] (unless it is over, or answered already).
    pub fn refuse(&mut self, request: &Request) {
        self.refuse_call(request.from(), request.tag());
    }

    /// Refuses the call that `to` answers, as [`refuse`](Self::refuse) does
    /// its request (a server that kept the call's `ReplyTo`, not its
    /// request: a stashed call).
    pub(crate) fn refuse_reply_to<R>(&mut self, to: crate::otp::call::ReplyTo<R>) {
        self.refuse_call(to.pid(), to.tag());
    }

    /// Refuses the call of caller `to` tagged `tag`.
    fn refuse_call(&mut self, to: Pid, tag: u64) {
        self.journaled(
            || Ask::Refuse { to, tag },
            |c| refuse_tagged(c.k(), to, tag),
            |&refused| Answer::Bool(refused),
            crate::otp::ctx::bool_of,
        );
    }
}

/// Puts `body` in `to`'s system queue as a request from `from` that is no
/// call (tag 0: nothing waits for an answer), if `to` is alive.
///
/// A `to` of another core cannot be reached (the body is not `Send`): the
/// caller fails, rather than the post being lost (see [`post_across`]).
pub(crate) fn post<I: 'static, O: 'static, Q: RequestType>(
    k: &mut crate::kernel::Kernel<I, O>,
    from: Pid,
    to: Pid,
    body: Q,
) {
    if let Some(s) = alive(k, to) {
        let request = Request::new(from, 0, body);
        k.push_sys_running(s, 0, move || Notice::Request(request).boxed());
    } else if k.elsewhere(to) {
        posted_elsewhere::<Q>(to);
    }
}

/// A post of a body that is not `Send` to a process of another core.
#[cold]
#[inline(never)]
fn posted_elsewhere<Q>(to: Pid) -> ! {
    panic!(
        "a cast (a request {}) to {to}, a process of another core, cannot cross cores: \
         cast with ServerRef::cast_across (its body Send)",
        std::any::type_name::<Q>()
    )
}

/// [`post`] to a process of any core of the request that `make` makes: for
/// one of another core, `make` travels there (in order with this core's
/// messages to it) and makes it there, put in its system queue if it is
/// alive.
pub(crate) fn post_across<I: 'static, O: 'static, Q: RequestType>(
    k: &mut Kernel<I, O>,
    from: Pid,
    to: Pid,
    make: impl FnOnce() -> Q + Send + 'static,
) {
    if k.elsewhere(to) {
        k.run_at(to, Box::new(move |k| post(k, from, to, make())));
    } else {
        post(k, from, to, make());
    }
}

/// Begins `me`'s typed request of `server`, which may be a process of
/// another core (the steps of [`call::begin`], then the request sent): the
/// request is the one `make` makes, on the server's core. The caller then
/// waits for the reply tagged with the monitor this gives, as for a call.
///
/// On one core the request is made here, and its reply is a `Q::Reply`. To
/// a server of another core, `make` travels there (after the monitor's own
/// half, in order with this core's messages to it), and the server's reply
/// comes back as `ship` makes it `Send` (its type is what `ship` makes).
pub(crate) fn begin_across<I: 'static, O: 'static, Q: RequestType>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    server: Pid,
    make: impl FnOnce() -> Q + Send + 'static,
    ship: call::ShipReply,
) -> Result<MonitorRef, CallError> {
    if !k.elsewhere(server) {
        let (monitor, request) = call::begin(k, me, server, |to: ReplyTo<Q::Reply>| {
            Request::new(to.pid(), to.tag(), make())
        })?;
        if let Some(s) = alive(k, server) {
            k.push_sys_running(s, 0, move || Notice::Request(request).boxed());
        }
        return Ok(monitor);
    }
    let (monitor, (from, tag)) =
        call::begin_across(k, me, server, |to: ReplyTo<()>| (to.pid(), to.tag()))?;
    k.run_at(
        server,
        Box::new(move |k| {
            // (Not alive there: the monitor says `noproc`, and `make` is
            // dropped.)
            if let Some(s) = alive(k, server) {
                let request = Request::from_elsewhere(from, tag, make(), ship);
                k.push_sys_running(s, 0, move || Notice::Request(request).boxed());
            }
        }),
    );
    Ok(monitor)
}

/// Sends `request`'s caller its refusal, if it is alive: whether it was. A
/// request that is no call's (a cast: tag 0) waits for nothing, and gets
/// none.
#[cfg_attr(not(feature = "stackless"), allow(dead_code))]
pub(crate) fn refuse<I: 'static, O: 'static>(
    k: &mut crate::kernel::Kernel<I, O>,
    request: &Request,
) -> bool {
    refuse_tagged(k, request.from, request.tag)
}

/// [`refuse`] for the call of caller `from` tagged `tag`.
pub(crate) fn refuse_tagged<I: 'static, O: 'static>(
    k: &mut crate::kernel::Kernel<I, O>,
    from: Pid,
    tag: u64,
) -> bool {
    if tag == 0 {
        return false;
    }
    match alive(k, from) {
        Some(p) => {
            k.push_sys_running(p, tag, || crate::kernel::SysMsg::new(call::Refused));
            true
        }
        // A caller of another core (whose request came from there): the
        // refusal goes back there, as its reply would.
        None if k.elsewhere(from) => {
            k.run_at(
                from,
                Box::new(move |k| {
                    if let Some(p) = alive(k, from) {
                        k.push_sys(p, tag, crate::kernel::SysMsg::new(call::Refused));
                    }
                }),
            );
            true
        }
        None => false,
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

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// A request sits in the system queue's `Notice`, kept inline (no
    /// allocation) while it fits the kernel's inline buffer (see the test of
    /// `Notice`'s size in `mail.rs`): three words, its type, body and rare
    /// parts (durable, or from another core) in the `Rc` its clones share.
    #[test]
    fn a_request_stays_three_words() {
        assert_eq!(std::mem::size_of::<Request>(), 24);
    }
}
