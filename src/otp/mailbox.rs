//! The mailbox as the toolkit reads it: a process's inbox and its system queue
//! (DOWN, EXIT, timeouts, replies), merged in arrival order. Each system
//! message is due once the user messages that arrived before it have left the
//! inbox (see [`Proc::sys_due`]), so that mail is read as OTP's one mailbox
//! would give it.
//!
//! Engine-independent: a stackful [`Ctx`](crate::Ctx) and a stackless
//! `StacklessCtx` wrap these, each waiting its own way when nothing is there.
//!
//! Each function takes the kernel and `me`, the calling process's live record,
//! to which the caller holds no reference; none keeps a reference to the record
//! across a kernel method that is given `me`. Some run user code (the `Drop` of
//! a stale reply, a selective receive's predicate): a stackless context calls
//! them with its re-entry guard held.

use std::time::Duration;

use crate::kernel::{Kernel, PPtr, Proc};
use crate::otp::mail::{Mail, MailRef, Notice};

/// Where the next piece of mail is: the system queue's front, or the inbox's
/// head.
enum Next {
    Sys,
    Msg,
    None,
}

/// `me`'s record.
///
/// # Safety
/// `me` is live, and no other reference to its record is held while the one
/// returned is.
#[inline(always)]
unsafe fn record<'a, I, O>(me: PPtr<I, O>) -> &'a mut Proc<I, O> {
    // SAFETY: per the contract.
    unsafe { &mut *me.as_ptr() }
}

/// Replies of calls that are over (they timed out, or their server's DOWN came
/// first) are dropped where mail is read: no call waits for them. (Their `Drop`
/// is user code.)
/// (The test, inlined, reads the queue's two slices: no iterator over a ring,
/// no call when none is stale; the dropping is out of line.)
#[inline]
pub(crate) fn drop_stale_replies<I, O>(p: &mut Proc<I, O>) {
    if let Some(e) = p.extra_mut() {
        let (a, b) = e.sys.as_slices();
        if a.iter().chain(b).any(|item| item.tag != 0) {
            drop_tagged(&mut e.sys);
        }
    }
}

/// Drops the tagged items (replies) of a system queue.
#[cold]
#[inline(never)]
fn drop_tagged(sys: &mut std::collections::VecDeque<crate::kernel::proc::SysItem>) {
    sys.retain(|item| item.tag == 0);
}

/// Where the next piece of mail is, stale replies dropped first.
fn next_mail<I, O>(p: &mut Proc<I, O>) -> Next {
    drop_stale_replies(p);
    if p.sys_due() {
        Next::Sys
    } else if !p.inbox.queue.is_empty() {
        Next::Msg
    } else if p.has_sys() {
        // (Not due yet, yet the inbox is empty: the messages it waited for were
        // taken by a selective receive.)
        Next::Sys
    } else {
        Next::None
    }
}

/// Takes the system queue's front as mail. (Inlined: the DOWN or EXIT read
/// is moved once, into the mail returned.)
#[inline(always)]
fn take_notice<I, O>(p: &mut Proc<I, O>) -> Mail<I> {
    let item = p
        .extra_mut()
        .and_then(|e| e.sys.pop_front())
        .expect("a notice is queued");
    match item.msg.downcast::<Notice>() {
        Ok(notice) => notice.into_mail(),
        Err(_) => unreachable!("only notices are untagged system messages"),
    }
}

/// After `me` took a message: a freed slot lets one waiting sender retry.
fn took<I: 'static, O: 'static>(k: &mut Kernel<I, O>, me: PPtr<I, O>) {
    // SAFETY: me is live; the reference ends before `wake_one_sender`.
    let p = unsafe { record(me) };
    if p.has_waiting_senders() && !p.inbox.is_full() {
        k.wake_one_sender(me);
    }
}

/// Takes `me`'s next mail in arrival order, a message or a notice, if any.
#[inline]
pub(crate) fn take_mail<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
) -> Option<Mail<I>> {
    // SAFETY: me is live; a read, the reference ends here.
    let p = unsafe { record(me) };
    // Nothing there (the poll before a wait): no stale reply to drop either.
    if p.inbox.queue.is_empty() && !p.has_sys() {
        return None;
    }
    take_some_mail(k, me)
}

/// [`take_mail`], with mail there.
#[inline(always)]
fn take_some_mail<I: 'static, O: 'static>(k: &mut Kernel<I, O>, me: PPtr<I, O>) -> Option<Mail<I>> {
    // SAFETY: me is live; the reference ends before `took`.
    let p = unsafe { record(me) };
    // (The mail a DOWN or an EXIT awaited: one notice, no message. It is the
    // next, as `next_mail` would find: nothing to drop, due or not.)
    if p.inbox.queue.is_empty()
        && let Some(e) = p.extra_ref()
        && e.sys.len() == 1
        && e.sys[0].tag == 0
    {
        return Some(take_notice(p));
    }
    match next_mail(p) {
        Next::Sys => Some(take_notice(p)),
        Next::Msg => {
            let m = p.inbox.pop_front().expect("the inbox has a head");
            took(k, me);
            Some(Mail::Msg(m))
        }
        Next::None => None,
    }
}

/// Takes `me`'s first piece of mail, in arrival order, that `pred` matches
/// (messages and notices alike), stale replies dropped first; the rest stay in
/// order. `pred` (user code) sees each piece until one matches.
#[cfg(feature = "stackless")]
pub(crate) fn select_mail<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    pred: &mut impl FnMut(MailRef<'_, I>) -> bool,
) -> Option<Mail<I>> {
    select_mail_at(k, me, pred).map(|(mail, _)| mail)
}

/// [`select_mail`], with the index the mail had in its queue (the inbox, or
/// the system queue for a notice).
pub(crate) fn select_mail_at<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    pred: &mut impl FnMut(MailRef<'_, I>) -> bool,
) -> Option<(Mail<I>, usize)> {
    // Merged arrival order: a notice comes before the message at the index of
    // the messages still ahead of it.
    enum Found {
        Sys(usize),
        Msg(usize),
    }
    // SAFETY: me is live; the reference ends before `took`.
    let p = unsafe { record(me) };
    drop_stale_replies(p);
    let head = p.inbox.head_removed;
    let found = {
        let sys = p.extra_ref().map(|e| &e.sys);
        let sys_len = sys.map_or(0, |s| s.len());
        let queue = &p.inbox.queue;
        let (mut i, mut j) = (0usize, 0usize);
        loop {
            let sys_first = j < sys_len && {
                let item = &sys.expect("sys_len > 0")[j];
                item.due.saturating_sub(head) as usize <= i || i >= queue.len()
            };
            if sys_first {
                let item = &sys.expect("sys_len > 0")[j];
                let notice = item.msg.downcast_ref::<Notice>().expect("a notice");
                if pred(notice.as_mail_ref()) {
                    break Some(Found::Sys(j));
                }
                j += 1;
            } else if i < queue.len() {
                if pred(MailRef::Msg(&queue[i])) {
                    break Some(Found::Msg(i));
                }
                i += 1;
            } else {
                break None;
            }
        }
    };
    match found? {
        Found::Sys(j) => {
            let item = p
                .extra_mut()
                .and_then(|e| e.sys.remove(j))
                .expect("index within the queue");
            let notice = item.msg.downcast::<Notice>().expect("a notice");
            Some((notice.into_mail(), j))
        }
        Found::Msg(i) => {
            let m = p.remove_message(i).expect("index within the inbox");
            took(k, me);
            Some((Mail::Msg(m), i))
        }
    }
}

/// Arms `me`'s timer (the one its waits share) `timeout` from now on the
/// scheduler's clock: it wakes `me` if `me` waits then, and sets its
/// timed-out mark.
pub(crate) fn arm<I: 'static, O: 'static>(k: &mut Kernel<I, O>, me: PPtr<I, O>, timeout: Duration) {
    k.arm_timer_after(me, timeout);
}

/// [`arm`], for `deadline`, the time being `now`: a deadline that has come
/// (a zero timeout, or one recorded before a crash) has timed out already,
/// and arms nothing.
pub(crate) fn arm_at<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    deadline: crate::clock::Time,
    now: crate::clock::Time,
) {
    if deadline > now {
        k.arm_timer(me, deadline);
        return;
    }
    k.cancel_timer(me);
    // SAFETY: me is live; `cancel_timer`'s reference to it has ended.
    unsafe { record(me) }.extra().timed_out = true;
}

/// Whether `me`'s timer fired.
pub(crate) fn timed_out<I, O>(me: PPtr<I, O>) -> bool {
    // SAFETY: me is live; a read.
    unsafe { record(me) }.timed_out()
}

/// Cancels `me`'s timer, if armed, and forgets that it fired: the wait is over.
pub(crate) fn disarm<I: 'static, O: 'static>(k: &mut Kernel<I, O>, me: PPtr<I, O>) {
    k.cancel_timer(me);
    // SAFETY: me is live; `cancel_timer`'s reference to it has ended.
    unsafe { record(me) }.clear_timed_out();
}
