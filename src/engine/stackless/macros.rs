//! The macros of stackless bodies: each loops over a `poll_*` method of the
//! context, yielding what the process waits for until the call can go on.

/// Takes the head of the inbox, waiting for a message (a stackless
/// [`Ctx::receive`](crate::Ctx::receive)): `receive!(cx)`.
#[macro_export]
macro_rules! receive {
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
#[macro_export]
macro_rules! select {
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
#[macro_export]
macro_rules! filter {
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
#[macro_export]
macro_rules! send {
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
#[macro_export]
macro_rules! send_to {
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
#[macro_export]
macro_rules! sleep {
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
#[macro_export]
macro_rules! join {
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
#[macro_export]
macro_rules! yield_now {
    () => {
        yield $crate::Pending::YIELD
    };
}
