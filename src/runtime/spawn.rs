//! Spawns placed on a core: made at once on the spawner's own core, or sent
//! to another core with a pid reserved there (so that the spawner has the
//! pid at once, and what is sent to it waits for the process).

use crate::error::SpawnError;
use crate::kernel::{Kernel, PPtr};
use crate::runtime::envelope::Make;
use crate::runtime::join::Fill;
use crate::runtime::local::local;
use crate::signal::{Payload, Pid};
use crate::template::Spawnable;

/// Makes and starts a top-level process whose result nobody keeps, with
/// `pid` if given (one reserved for it) or the kernel's next.
pub(crate) fn make_detached<M: 'static, A: 'static, R: Payload>(
    k: &mut Kernel<M, M>,
    pid: Option<Pid>,
    template: &impl Spawnable<M, M, A, R>,
    args: A,
) -> Result<Pid, SpawnError> {
    make_tied(k, pid, template, args, |_, _| {})
}

/// [`make_detached`], `tie` run on the new process's record (made, not
/// started: nothing of it has run) before it starts.
pub(crate) fn make_tied<M: 'static, A: 'static, R: Payload>(
    k: &mut Kernel<M, M>,
    pid: Option<Pid>,
    template: &impl Spawnable<M, M, A, R>,
    args: A,
    tie: impl FnOnce(&mut Kernel<M, M>, PPtr<M, M>),
) -> Result<Pid, SpawnError> {
    let p = match pid {
        Some(pid) => k.with_pid(pid, |k| template.create_in(k, args, None))?,
        None => template.create_in(k, args, None)?,
    };
    // SAFETY: p was just made: live, and referenced nowhere else.
    let pid = unsafe {
        (*p.as_ptr()).detached = true;
        p.as_ref().pid
    };
    tie(k, p);
    k.start(p);
    Ok(pid)
}

/// What a core does with a spawn sent to it: a detached process.
pub(crate) fn detached<M, A, R, T>(pid: Pid, template: &T, args: A) -> Make<M>
where
    M: Send + 'static,
    A: Send + 'static,
    R: Payload,
    T: Spawnable<M, M, A, R> + Clone + Send + 'static,
{
    let template = template.clone();
    Box::new(move |k| make_detached(k, Some(pid), &template, args).map(drop))
}

/// What a core does with a spawn sent to it: a process whose result `fill`
/// gives to its joiner.
pub(crate) fn joinable<M, A, R, T>(pid: Pid, template: &T, args: A, fill: Fill<R>) -> Make<M>
where
    M: Send + 'static,
    A: Send + 'static,
    R: Payload + Send,
    T: Spawnable<M, M, A, R> + Clone + Send + 'static,
{
    let template = template.clone();
    Box::new(move |k| {
        let p = k.with_pid(pid, |k| template.create_in(k, args, None))?;
        k.sink_result(
            pid,
            Box::new(move |k, _, result| {
                let outcome = result.map(|r| {
                    *r.downcast::<R>()
                        .expect("a joiner has its template's result type")
                });
                local(k).handing.push(Box::new(move || fill.give(outcome)));
            }),
        );
        k.start(p);
        Ok(())
    })
}
