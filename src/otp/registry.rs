//! The registry of names (OTP's `register/2`, `whereis/1`, `unregister/1`
//! and sending to a registered name): one name per process and one process
//! per name; a name is freed when its process ends, so that a restarted
//! process can take it again, and messages sent to the name then reach the
//! new one.

use thiserror::Error;

use crate::kernel::Kernel;
use crate::otp::record::{Answer, Ask};
use crate::otp::{alive, table, watch};
use crate::signal::Pid;

/// A name that could not be registered.
#[derive(Debug, Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RegisterError {
    /// The name is registered to another process (live).
    #[error("the name {0:?} is taken by {1}")]
    NameTaken(String, Pid),
    /// The process has a name already (one name per process, as in OTP).
    #[error("{0} is registered as {1:?} already")]
    AlreadyNamed(Pid, String),
    /// The process is not alive.
    #[error("no live process has pid {0}")]
    NoProc(Pid),
}

/// Registers `name` for `pid`.
pub(crate) fn register<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    name: &str,
    pid: Pid,
) -> Result<(), RegisterError> {
    let Some(p) = alive(k, pid) else {
        return Err(RegisterError::NoProc(pid));
    };
    table(k).register(name, pid)?;
    watch(p);
    Ok(())
}

/// Frees `name`: the process it named, if it was registered.
pub(crate) fn unregister<I: 'static, O: 'static>(k: &mut Kernel<I, O>, name: &str) -> Option<Pid> {
    table(k).unregister(name)
}

/// The process registered as `name`.
pub(crate) fn whereis<I: 'static, O: 'static>(k: &mut Kernel<I, O>, name: &str) -> Option<Pid> {
    table(k).names.get(name).copied()
}

/// Every registered name and its process, by name.
pub(crate) fn registered<I: 'static, O: 'static>(k: &mut Kernel<I, O>) -> Vec<(String, Pid)> {
    table(k)
        .names
        .iter()
        .map(|(name, pid)| (name.to_string(), *pid))
        .collect()
}

impl<I: 'static, O: 'static> crate::Ctx<I, O> {
    /// Registers `name` for `pid` (OTP's `register/2`): sends to the name
    /// reach it until it ends (then the name is free again) or the name is
    /// unregistered. One name per process, one process per name: a taken
    /// name, a process that has one, or one that is not alive is a
    /// [`RegisterError`].
    pub fn register(&mut self, name: &str, pid: Pid) -> Result<(), RegisterError> {
        self.journaled(
            || Ask::Register {
                name: name.to_string(),
                pid,
            },
            |c| register(c.k(), name, pid),
            |r| Answer::Register(r.clone()),
            |a| match a {
                Answer::Register(r) => Some(r),
                _ => None,
            },
        )
    }

    /// Frees `name` (OTP's `unregister/1`): the process it named.
    pub fn unregister(&mut self, name: &str) -> Option<Pid> {
        self.journaled(
            || Ask::Unregister {
                name: name.to_string(),
            },
            |c| unregister(c.k(), name),
            |&p| Answer::Pid(p),
            pid_of,
        )
    }

    /// The process registered as `name` (OTP's `whereis/1`).
    pub fn whereis(&mut self, name: &str) -> Option<Pid> {
        self.journaled(
            || Ask::Whereis {
                name: name.to_string(),
            },
            |c| whereis(c.k(), name),
            |&p| Answer::Pid(p),
            pid_of,
        )
    }

    /// Sends `msg` to the process registered as `name`, as
    /// [`send_to`](Self::send_to) sends (OTP's `Name ! Msg`); no such name
    /// gives the message back in [`SendError::UnknownName`](crate::SendError::UnknownName).
    pub fn send_named(&mut self, name: &str, msg: O) -> Result<(), crate::SendError<O>> {
        match self.whereis(name) {
            Some(pid) => {
                self.send_to(pid, msg);
                Ok(())
            }
            None => Err(crate::SendError::UnknownName(name.to_string(), msg)),
        }
    }
}

/// A recorded pid, or none.
fn pid_of(a: Answer) -> Option<Option<Pid>> {
    match a {
        Answer::Pid(p) => Some(p),
        _ => None,
    }
}

impl<M: 'static> crate::SimpleScheduler<M> {
    /// Registers `name` for `pid` (see [`Ctx::register`](crate::Ctx::register)).
    pub fn register(&mut self, name: &str, pid: Pid) -> Result<(), RegisterError> {
        register(self.kernel_mut(), name, pid)
    }

    /// Frees `name`: the process it named.
    pub fn unregister(&mut self, name: &str) -> Option<Pid> {
        unregister(self.kernel_mut(), name)
    }

    /// The process registered as `name`.
    pub fn whereis(&mut self, name: &str) -> Option<Pid> {
        whereis(self.kernel_mut(), name)
    }

    /// Every registered name and its process, by name (OTP's `registered/0`).
    pub fn registered(&mut self) -> Vec<(String, Pid)> {
        registered(self.kernel_mut())
    }

    /// Sends `msg` to the process registered as `name`, from outside (as
    /// [`send`](Self::send)); no such name gives the message back in
    /// [`SendError::UnknownName`](crate::SendError::UnknownName).
    pub fn send_named(&mut self, name: &str, msg: M) -> Result<(), crate::SendError<M>> {
        match self.whereis(name) {
            Some(pid) => self.send(pid, msg),
            None => Err(crate::SendError::UnknownName(name.to_string(), msg)),
        }
    }
}

#[cfg(feature = "stackless")]
impl<I: 'static, O: 'static> crate::StacklessCtx<I, O> {
    /// Registers `name` for `pid` (see [`Ctx::register`](crate::Ctx::register)).
    pub fn register(&self, name: &str, pid: Pid) -> Result<(), RegisterError> {
        let b = self.enter();
        Self::spend(self.p(&b));
        register(self.k(&b), name, pid)
    }

    /// Frees `name`: the process it named.
    pub fn unregister(&self, name: &str) -> Option<Pid> {
        let b = self.enter();
        Self::spend(self.p(&b));
        unregister(self.k(&b), name)
    }

    /// The process registered as `name`. (To send to it, `send_to!` its pid;
    /// `None` is what [`Ctx::send_named`](crate::Ctx::send_named) turns into
    /// `SendError::UnknownName`.)
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        let b = self.enter();
        Self::spend(self.p(&b));
        whereis(self.k(&b), name)
    }
}
