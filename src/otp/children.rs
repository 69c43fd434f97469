//! A parent's view of its children (libeam's `getChildren` and `stopChild`):
//! the processes it spawned and has not joined, and those it started with
//! `spawn_link` (their parent as OTP's `proc_lib` records it), listed, and
//! stopped one at a time as a supervisor stops a child (OTP's `shutdown/2`).

use crate::engine::stackful::context::Ctx;
use crate::error::JoinError;
use crate::otp::links;
use crate::otp::record::{Answer, Ask};
use crate::otp::supervisor::Shutdown;
use crate::otp::supervisor::shutdown::stop_all;
use crate::reason::Reason;
use crate::signal::Pid;

impl<I: 'static, O: 'static> Ctx<I, O> {
    /// This process's children, in the order it started them: those it
    /// spawned ([`spawn`](Ctx::spawn)) and has not joined (running, or ended
    /// with a result waiting for [`join`](Ctx::join)), then those alive that
    /// it started with [`spawn_link`](Ctx::spawn_link) and is still linked
    /// to. Not the processes it merely linked to or monitors.
    pub fn children(&mut self) -> Vec<Pid> {
        let me = self.pid();
        self.journaled(
            || Ask::Children,
            |c| {
                let mut children: Vec<Pid> = c.p().children().to_vec();
                let linked = links::links_of(c.k(), me);
                let table = crate::otp::table(c.k());
                children.extend(
                    linked
                        .into_iter()
                        .filter(|&pid| table.parent_of(pid) == Some(me)),
                );
                children
            },
            |pids| Answer::Pids(pids.clone()),
            crate::otp::ctx::pids_of,
        )
    }

    /// Stops child `child` (one of [`children`](Self::children)) as `how`
    /// says, as a supervisor stops its child (OTP's `shutdown/2`): the exit
    /// signal `Shutdown`, then `Kill` if it has not ended in time (or `Kill`
    /// at once, for [`Shutdown::BrutalKill`]), and waits for its end. Its
    /// own children end with it. The reason it ended with: a child spawned
    /// with `spawn` is joined, its result dropped (`Normal` if it had
    /// returned one); one started with `spawn_link` is unlinked first, so
    /// that its end does not reach this process.
    ///
    /// A pid that is not one of its children: [`JoinError::NotAChild`].
    pub fn stop_child(&mut self, child: Pid, how: Shutdown) -> Result<Reason, JoinError> {
        if !self.children().contains(&child) {
            return Err(JoinError::NotAChild(child));
        }
        if self.p().children().contains(&child) {
            let down = stop_all(self, &[child], how).remove(0);
            return Ok(match self.join_any(child) {
                Ok(result) => {
                    drop(result);
                    match down {
                        // It had returned before the signal came.
                        Reason::NoProc => Reason::Normal,
                        down => down,
                    }
                }
                Err(JoinError::Exited(error)) => Reason::from(error),
                Err(other) => return Err(other),
            });
        }
        Ok(stop_all(self, &[child], how).remove(0))
    }
}
