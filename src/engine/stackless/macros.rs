//! The macros of stackless bodies: each loops over a `poll_*` method of the
//! context, yielding what the process waits for until the call can go on.
//!
//! `#[macro_export]` puts a macro at the crate root, where `select!`, `join!` and
//! `send!` would clash with other crates' macros under glob imports: each is
//! exported under a hidden name, and re-exported by its own name from
//! [`stackless`](crate::stackless) only (`chronoflow::stackless::receive!`).

/// Takes the head of the inbox, waiting for a message (a stackless
/// [`Ctx::receive`](crate::Ctx::receive)): `receive!(cx)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_receive {
    ($cx:expr) => {
        loop {
            match $cx.poll_receive() {
                ::core::result::Result::Ok(m) => break m,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    };
}

/// Selective receive (a stackless [`Ctx::select`](crate::Ctx::select)):
/// `select!(cx, |m| pred)` takes the first message that matches, waiting for one,
/// and leaves the others in order.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_select {
    ($cx:expr, $pred:expr) => {{
        let mut scan = $crate::Scan::default();
        loop {
            match $cx.poll_select(&mut scan, $pred) {
                ::core::result::Result::Ok(m) => break m,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Takes the first message that matches, dropping those before it (a stackless
/// [`Ctx::filter`](crate::Ctx::filter)): `filter!(cx, |m| pred)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_filter {
    ($cx:expr, $pred:expr) => {
        loop {
            match $cx.poll_filter($pred) {
                ::core::result::Result::Ok(m) => break m,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    };
}

/// Sends where the route says, waiting for room in a full inbox (a stackless
/// [`Ctx::send`](crate::Ctx::send)): `send!(cx, msg)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_send {
    ($cx:expr, $msg:expr) => {{
        let mut msg = $msg;
        loop {
            match $cx.poll_send(msg) {
                ::core::result::Result::Ok(()) => break,
                ::core::result::Result::Err((back, pending)) => {
                    msg = back;
                    yield pending
                }
            }
        }
    }};
}

/// Sends to a pid, waiting for room in a full inbox (a stackless
/// [`Ctx::send_to`](crate::Ctx::send_to)): `send_to!(cx, pid, msg)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_send_to {
    ($cx:expr, $to:expr, $msg:expr) => {{
        let to = $to;
        let mut msg = $msg;
        loop {
            match $cx.poll_send_to(to, msg) {
                ::core::result::Result::Ok(()) => break,
                ::core::result::Result::Err((back, pending)) => {
                    msg = back;
                    yield pending
                }
            }
        }
    }};
}

/// Sleeps for a [`Duration`](std::time::Duration) of the scheduler's clock (a
/// stackless [`Ctx::sleep`](crate::Ctx::sleep)): `sleep!(cx, duration)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_sleep {
    ($cx:expr, $duration:expr) => {{
        let mut sleep = $crate::Sleep::new($duration);
        loop {
            match $cx.poll_sleep(&mut sleep) {
                ::core::result::Result::Ok(()) => break,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Waits for a child to stop and gives its result (a stackless
/// [`Ctx::join`](crate::Ctx::join)): `join!(cx, child)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_join {
    ($cx:expr, $child:expr) => {{
        let child = $child;
        loop {
            match $cx.poll_join(child) {
                ::core::result::Result::Ok(result) => break result,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Waits for a process spawned with
/// [`StacklessCtx::spawn_joinable_at`](crate::StacklessCtx::spawn_joinable_at)
/// on any core to end, and gives its result (a stackless
/// [`Ctx::join_across`](crate::Ctx::join_across)): `join_across!(cx,
/// joinable)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_join_across {
    ($cx:expr, $joinable:expr) => {{
        let joinable = $joinable;
        loop {
            match $cx.poll_join_across(&joinable) {
                ::core::result::Result::Ok(result) => break result,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Arms a timer that delivers a message after a delay (a stackless
/// [`Ctx::send_after`](crate::Ctx::send_after)), first yielding the turn if
/// its budget is spent, as a stackful `send_after` does (and as BEAM preempts
/// a process after its reductions): `send_after!(cx, delay, to, msg)` gives
/// the [`TimerRef`](crate::TimerRef). The method `cx.send_after` never
/// yields: a loop of them keeps the turn, and no timer fires meanwhile.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_send_after {
    ($cx:expr, $delay:expr, $to:expr, $msg:expr) => {{
        let (delay, to) = ($delay, $to);
        let mut msg = $msg;
        loop {
            match $cx.poll_send_after(delay, to, msg) {
                ::core::result::Result::Ok(timer) => break timer,
                ::core::result::Result::Err((back, pending)) => {
                    msg = back;
                    yield pending
                }
            }
        }
    }};
}

/// Gives the rest of the turn to the other runnable processes (a stackless
/// [`Ctx::yield_now`](crate::Ctx::yield_now)): `yield_now!()`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_yield_now {
    () => {
        yield $crate::Pending::YIELD
    };
}

/// Takes the next mail in arrival order, a message or a system notice (DOWN,
/// EXIT, timeout), waiting for one (a stackless
/// [`Ctx::receive_mail`](crate::Ctx::receive_mail)): `receive_mail!(cx)` gives
/// a [`Mail`](crate::Mail).
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_receive_mail {
    ($cx:expr) => {
        loop {
            match $cx.poll_receive_mail() {
                ::core::result::Result::Ok(mail) => break mail,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    };
}

/// Takes the next mail, waiting at most a [`Duration`](std::time::Duration) of
/// the scheduler's clock (a stackless
/// [`Ctx::receive_mail_timeout`](crate::Ctx::receive_mail_timeout)):
/// `receive_mail_timeout!(cx, timeout)` gives `None` if none came in time.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_receive_mail_timeout {
    ($cx:expr, $timeout:expr) => {{
        let mut wait = $crate::TimedMail::new($timeout);
        loop {
            match $cx.poll_receive_mail_timeout(&mut wait) {
                ::core::result::Result::Ok(mail) => break mail,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Selective receive over mail (a stackless
/// [`Ctx::select_mail`](crate::Ctx::select_mail)): `select_mail!(cx, |m| pred)`
/// takes the first piece of mail, messages and notices alike, that the
/// predicate matches on its [`MailRef`](crate::MailRef), waiting for one, and
/// leaves the rest in order.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_select_mail {
    ($cx:expr, $pred:expr) => {
        loop {
            match $cx.poll_select_mail($pred) {
                ::core::result::Result::Ok(mail) => break mail,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    };
}

/// Calls a server and waits for its reply (a stackless
/// [`Ctx::call`](crate::Ctx::call)): `call!(cx, server, |reply_to| request,
/// timeout)` sends the request that the closure makes of a
/// [`ReplyTo`](crate::ReplyTo), and gives `Result<R, CallError>`; `timeout` is
/// an `Option<Duration>` (`None`: forever). The server is monitored during the
/// call: a server that is not alive, or ends before it replies, ends the call
/// with [`CallError::NoProc`](crate::CallError::NoProc) or
/// [`CallError::Down`](crate::CallError::Down); a reply that comes after the
/// timeout is dropped, never taken for another call's.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_call {
    ($cx:expr, $server:expr, $request:expr, $timeout:expr) => {{
        let mut calling = $crate::Calling::new($server, $request, $timeout);
        loop {
            match $cx.poll_call(&mut calling) {
                ::core::result::Result::Ok(outcome) => break outcome,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Calls a process of any core and waits for its reply (a stackless
/// [`Ctx::call_across`](crate::Ctx::call_across)): as
/// [`call!`](crate::stackless::call), the reply type `Send`, so that it may
/// come from another core of a [`Runtime`](crate::runtime::Runtime).
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_call_across {
    ($cx:expr, $server:expr, $request:expr, $timeout:expr) => {{
        let mut calling = $crate::Calling::new($server, $request, $timeout);
        loop {
            match $cx.poll_call_across(&mut calling) {
                ::core::result::Result::Ok(outcome) => break outcome,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Sends a typed request and waits for its answer (a stackless
/// [`Ctx::request`](crate::Ctx::request)): `request!(cx, server, request,
/// timeout)` gives `Result<Reply, CallError>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_request {
    ($cx:expr, $server:expr, $request:expr, $timeout:expr) => {{
        let mut requesting = $crate::Requesting::new($server, $request, $timeout);
        loop {
            match $cx.poll_request(&mut requesting) {
                ::core::result::Result::Ok(outcome) => break outcome,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Sends a typed request to a server of any core and waits for its answer (a
/// stackless [`Ctx::request_across`](crate::Ctx::request_across), OTP's
/// `gen_server:call/3` to a process of another node): as
/// [`request!`](crate::stackless::request), the request and its reply `Send`,
/// so that they may cross to another core of a
/// [`Runtime`](crate::runtime::Runtime) and back. A typed server's call:
/// `request_across!(cx, s.pid(), s.call_of(call), timeout)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_request_across {
    ($cx:expr, $server:expr, $request:expr, $timeout:expr) => {{
        let mut requesting = $crate::Requesting::new($server, $request, $timeout);
        loop {
            match $cx.poll_request_across(&mut requesting) {
                ::core::result::Result::Ok(outcome) => break outcome,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Sends an exit signal and lets it act before going on (a stackless
/// [`Ctx::exit_signal`](crate::Ctx::exit_signal)): `exit_signal!(cx, pid,
/// reason)`. A signal that ends this process itself ends it at once; one to
/// another process is applied before this process goes on (it yields the turn
/// once for it).
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_exit_signal {
    ($cx:expr, $pid:expr, $reason:expr) => {{
        let mut signal = $crate::Signalling::new($pid, $reason);
        loop {
            match $cx.poll_exit_signal(&mut signal) {
                ::core::result::Result::Ok(()) => break,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}
