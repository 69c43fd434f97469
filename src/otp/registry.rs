//! The registry of names (OTP's `register/2`, `whereis/1`, `unregister/1`
//! and sending to a registered name): one name per process and one process
//! per name; a name is freed when its process ends, so that a restarted
//! process can take it again, and messages sent to the name then reach the
//! new one.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use thiserror::Error;

use crate::kernel::Kernel;
use crate::otp::record::{Answer, Ask};
use crate::otp::{alive, table, watch};
use crate::signal::Pid;

/// One registry for the kernels of a runtime: names that every core sees
/// (kept, a clone each, in each kernel's extensions; none for a kernel of
/// its own). Each kernel's table still holds the names of its own
/// processes, so that a process's end frees its name where it ends.
#[derive(Clone, Default)]
pub(crate) struct SharedNames(pub(crate) Arc<RwLock<BTreeMap<Arc<str>, Pid>>>);

impl SharedNames {
    /// The pid named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Pid> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    /// Frees `name` if it names `pid` (a process that ended).
    pub(crate) fn free(&self, name: &str, pid: Pid) {
        let mut names = self.0.write().unwrap_or_else(|e| e.into_inner());
        if names.get(name) == Some(&pid) {
            names.remove(name);
        }
    }
}

/// The runtime's registry, if this kernel is one of a runtime's.
#[inline]
fn shared<I: 'static, O: 'static>(k: &Kernel<I, O>) -> Option<SharedNames> {
    if !k.has_remote() {
        return None;
    }
    k.extensions.get::<SharedNames>().cloned()
}

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
        if k.elsewhere(pid)
            && let Some(names) = shared(k)
        {
            return register_elsewhere(k, &names, name, pid);
        }
        return Err(RegisterError::NoProc(pid));
    };
    match shared(k) {
        Some(names) => {
            // (One lock for the check and the insert: a name is taken once.)
            let mut names = names.0.write().unwrap_or_else(|e| e.into_inner());
            if let Some(&owner) = names.get(name) {
                return Err(RegisterError::NameTaken(name.to_string(), owner));
            }
            table(k).register(name, pid)?;
            names.insert(name.into(), pid);
        }
        None => table(k).register(name, pid)?,
    }
    watch(p);
    Ok(())
}

/// Frees `name`: the process it named, if it was registered.
/// [`register`] of a process of another kernel of the runtime: the name is
/// the runtime's at once, and that kernel's table takes it for the process
/// (freed at its end); if the process is not alive by then, or has a name
/// already, the name is freed again.
fn register_elsewhere<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    names: &SharedNames,
    name: &str,
    pid: Pid,
) -> Result<(), RegisterError> {
    {
        let mut taken = names.0.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&owner) = taken.get(name) {
            return Err(RegisterError::NameTaken(name.to_string(), owner));
        }
        taken.insert(name.into(), pid);
    }
    let names = names.clone();
    let name: Arc<str> = name.into();
    k.run_at(
        pid,
        Box::new(move |k| {
            let kept = match alive(k, pid) {
                Some(p) => {
                    let ok = table(k).register(&name, pid).is_ok();
                    if ok {
                        watch(p);
                    }
                    ok
                }
                None => false,
            };
            if !kept {
                names.free(&name, pid);
            }
        }),
    );
    Ok(())
}

pub(crate) fn unregister<I: 'static, O: 'static>(k: &mut Kernel<I, O>, name: &str) -> Option<Pid> {
    let Some(names) = shared(k) else {
        return table(k).unregister(name);
    };
    let pid = names
        .0
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(name)?;
    if k.elsewhere(pid) {
        // Its core forgets it too (unless the name is another's by then).
        let name: Arc<str> = name.into();
        k.run_at(
            pid,
            Box::new(move |k| {
                let t = table(k);
                if t.names.get(&name) == Some(&pid) {
                    t.unregister(&name);
                }
            }),
        );
    } else {
        table(k).unregister(name);
    }
    Some(pid)
}

/// The process registered as `name`.
pub(crate) fn whereis<I: 'static, O: 'static>(k: &mut Kernel<I, O>, name: &str) -> Option<Pid> {
    match shared(k) {
        Some(names) => names.get(name),
        None => table(k).names.get(name).copied(),
    }
}

/// Every registered name and its process, by name.
pub(crate) fn registered<I: 'static, O: 'static>(k: &mut Kernel<I, O>) -> Vec<(String, Pid)> {
    if let Some(names) = shared(k) {
        let names = names.0.read().unwrap_or_else(|e| e.into_inner());
        return names
            .iter()
            .map(|(name, pid)| (name.to_string(), *pid))
            .collect();
    }
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
