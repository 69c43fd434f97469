//! [`Sender`]: a `Send + Clone` handle through which any thread, or any async
//! task, sends messages to the processes of a scheduler.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::error::SendError;
use crate::kernel::mail::{Mail, Refused};
use crate::signal::Pid;

/// A handle through which other threads and async tasks send messages to the
/// processes of a [`SimpleScheduler`](crate::SimpleScheduler) or a
/// [`DurableScheduler`](crate::DurableScheduler) (from
/// [`SimpleScheduler::sender`](crate::SimpleScheduler::sender)). It is `Send`,
/// `Sync` and `Clone` when the message type is `Send`; the scheduler itself stays
/// on its own thread.
///
/// A message goes into a lock-free queue (`crossbeam-queue`) and wakes the
/// scheduler, which delivers it at the start of its next pass, as a
/// [`send`](crate::SimpleScheduler::send) from outside: messages of one sender to
/// one pid arrive in the order sent. The scheduler then journals it, if it is
/// durable.
///
/// **Back-pressure.** At most a capacity of messages (the scheduler's
/// [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY) unless
/// [`SimpleScheduler::sender_with_capacity`](crate::SimpleScheduler::sender_with_capacity)
/// says otherwise) are in flight at once: sent, and not yet in their inbox. A
/// message whose inbox is full stays in flight until the process makes room. So
/// a process that does not keep up fills its inbox, then the capacity, and then
/// [`try_send`](Self::try_send) refuses with the message back
/// ([`SendError::Full`]), and [`send`](Self::send) (async) or
/// [`send_blocking`](Self::send_blocking) wait for room: the caller's choice.
/// The capacity is shared by all the scheduler's senders and destinations.
///
/// **What the sender cannot know.** Whether the pid is alive is known only at
/// delivery, on the scheduler's thread: a message to a pid with no live
/// process (or refused by an [`Overflow::Reject`](crate::Overflow::Reject)
/// inbox) is kept with the scheduler's undelivered messages
/// ([`take_undelivered`](crate::SimpleScheduler::take_undelivered)), never
/// dropped. Once the scheduler is dropped, sends fail with
/// [`SendError::Closed`] and the message back.
///
/// A scheduler's [`run`](crate::SimpleScheduler::run) and
/// [`run_blocking`](crate::SimpleScheduler::run_blocking) keep waiting while a
/// sender of it is alive: drop the senders to let the run end.
pub struct Sender<M> {
    mail: Arc<Mail<M>>,
}

impl<M> Sender<M> {
    pub(crate) fn new(mail: Arc<Mail<M>>) -> Sender<M> {
        mail.sender_made();
        Sender { mail }
    }

    /// Sends `msg` to `to` if fewer than the capacity of messages are in flight;
    /// else gives it back in [`SendError::Full`] (or [`SendError::Closed`] once
    /// the scheduler is gone, [`SendError::Stopped`] once a durable scheduler's
    /// run stopped on a journal error).
    pub fn try_send(&self, to: Pid, msg: M) -> Result<(), SendError<M>> {
        self.mail.try_send(to, msg).map_err(SendError::from)
    }

    /// Sends `msg` to `to`, waiting (without blocking the thread) while the
    /// capacity of messages is in flight. Fails only once the scheduler is gone
    /// ([`SendError::Closed`], with the message).
    ///
    /// Cancel-safe: dropping the future before it completes sends nothing (the
    /// message is dropped with it).
    pub fn send(&self, to: Pid, msg: M) -> SendFuture<'_, M> {
        SendFuture {
            mail: &self.mail,
            to,
            msg: Some(msg),
        }
    }

    /// Sends `msg` to `to`, blocking the thread while the capacity of messages
    /// is in flight. Fails only once the scheduler is gone.
    ///
    /// # Panics
    /// If it would have to wait on the scheduler's own thread (from a process,
    /// say), which would wait for itself for good: there use
    /// [`try_send`](Self::try_send), or a process's own sends.
    pub fn send_blocking(&self, to: Pid, msg: M) -> Result<(), SendError<M>> {
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut msg = msg;
        loop {
            match self.mail.try_send(to, msg) {
                Ok(()) => return Ok(()),
                Err(Refused::Full(m)) => msg = m,
                Err(refused) => return Err(refused.into()),
            }
            assert!(
                !self.mail.on_kernel_thread(),
                "Sender::send_blocking would wait for room on its scheduler's own thread, \
                 which makes the room: it would wait for good"
            );
            if !self.mail.wait_room(&waker) {
                thread::park();
            }
        }
    }

    /// Whether this runs on the thread of the scheduler it sends to.
    pub(crate) fn on_kernel_thread(&self) -> bool {
        self.mail.on_kernel_thread()
    }

    /// Whether the scheduler is gone: every send now fails.
    pub fn is_closed(&self) -> bool {
        self.mail.is_closed()
    }

    /// How many messages may be in flight at once.
    pub fn capacity(&self) -> usize {
        self.mail.capacity()
    }
}

impl<M> Clone for Sender<M> {
    fn clone(&self) -> Self {
        Sender::new(self.mail.clone())
    }
}

impl<M> Drop for Sender<M> {
    fn drop(&mut self) {
        self.mail.sender_gone();
    }
}

impl<M> fmt::Debug for Sender<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.mail.capacity())
            .field("closed", &self.mail.is_closed())
            .finish()
    }
}

impl<M> From<Refused<M>> for SendError<M> {
    fn from(refused: Refused<M>) -> Self {
        match refused {
            Refused::Full(msg) => SendError::Full(msg),
            Refused::Closed(msg) => SendError::Closed(msg),
            Refused::Stopped(msg) => SendError::Stopped(msg),
        }
    }
}

/// Wakes a thread parked in [`Sender::send_blocking`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The future of [`Sender::send`].
#[must_use = "a future does nothing unless awaited"]
pub struct SendFuture<'a, M> {
    mail: &'a Mail<M>,
    to: Pid,
    msg: Option<M>,
}

// The message is moved in and out, never pinned.
impl<M> Unpin for SendFuture<'_, M> {}

impl<M> Future for SendFuture<'_, M> {
    type Output = Result<(), SendError<M>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let msg = self.msg.take().expect("polled after completion");
            match self.mail.try_send(self.to, msg) {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(Refused::Full(m)) => self.msg = Some(m),
                Err(refused) => return Poll::Ready(Err(refused.into())),
            }
            if !self.mail.wait_room(cx.waker()) {
                return Poll::Pending;
            }
        }
    }
}

impl<M> fmt::Debug for SendFuture<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture").field("to", &self.to).finish()
    }
}
