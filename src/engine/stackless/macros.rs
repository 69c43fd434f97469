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

/// Gives the rest of the turn to the other runnable processes (a stackless
/// [`Ctx::yield_now`](crate::Ctx::yield_now)): `yield_now!()`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chronoflow_yield_now {
    () => {
        yield $crate::Pending::YIELD
    };
}
