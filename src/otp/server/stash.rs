//! A server's stash (libeam's `stash`/`unstash`/`unstashAll`/`clearStash`,
//! Akka's `StashBuffer`): mail a handler is not ready for, put aside and
//! handled later, in the order it came, ahead of any mail still in the
//! inbox.
//!
//! A handler owns what it was given, so it stashes it by giving it back
//! ([`ServerCtx::stash_call`](super::ServerCtx::stash_call) with the call and
//! its `From`, `stash_cast`, `stash_info`). Unstashed mail is not sent again
//! (which would put it behind newer mail): the server's loop takes it before
//! its inbox, oldest first.
//!
//! The stash holds mail taken out of the inbox, which no longer counts
//! against the inbox's capacity: it is bounded on its own
//! ([`Server::STASH_CAPACITY`](super::Server::STASH_CAPACITY)), and a full
//! stash gives the mail back ([`StashFull`]).

use std::collections::VecDeque;
use std::fmt;

use crate::otp::mail::Mail;
use crate::otp::server::{From, Server};

/// Mail put aside: a call (with where its reply goes), a cast, or anything
/// else.
pub(super) enum Stashed<S: Server> {
    Call(S::Call, From<S::Reply>),
    Cast(S::Cast),
    Info(Mail<S::Msg>),
}

/// A server's stash, and the mail unstashed, waiting to be handled.
pub(super) struct Stash<S: Server> {
    held: VecDeque<Stashed<S>>,
    unstashed: VecDeque<Stashed<S>>,
}

impl<S: Server> Default for Stash<S> {
    fn default() -> Self {
        Stash {
            held: VecDeque::new(),
            unstashed: VecDeque::new(),
        }
    }
}

impl<S: Server> Stash<S> {
    /// Puts `item` aside, if there is room.
    pub(super) fn push(&mut self, item: Stashed<S>) -> Result<(), Stashed<S>> {
        if self.held.len() >= S::STASH_CAPACITY {
            return Err(item);
        }
        self.held.push_back(item);
        Ok(())
    }

    /// Moves the oldest stashed mail to be handled next (after what was
    /// unstashed before it): whether there was one.
    pub(super) fn unstash(&mut self) -> bool {
        match self.held.pop_front() {
            Some(item) => {
                self.unstashed.push_back(item);
                true
            }
            None => false,
        }
    }

    /// Moves all stashed mail to be handled next, in order: how much.
    pub(super) fn unstash_all(&mut self) -> usize {
        let n = self.held.len();
        self.unstashed.append(&mut self.held);
        n
    }

    /// Takes the stashed mail out (to be dropped, its calls refused).
    pub(super) fn clear(&mut self) -> VecDeque<Stashed<S>> {
        std::mem::take(&mut self.held)
    }

    /// How much mail is stashed.
    pub(super) fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is stashed, nor unstashed and waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty() && self.unstashed.is_empty()
    }

    /// The next unstashed mail to handle, if any.
    pub(super) fn next(&mut self) -> Option<Stashed<S>> {
        self.unstashed.pop_front()
    }
}

/// The stash was full ([`Server::STASH_CAPACITY`](super::Server::STASH_CAPACITY)):
/// what was to be stashed, given back.
pub struct StashFull<T>(pub T);

impl<T> fmt::Debug for StashFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StashFull(..)")
    }
}

impl<T> fmt::Display for StashFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server's stash is full")
    }
}

impl<T> std::error::Error for StashFull<T> {}
