//! The stackful engine: a process body runs on a corosensei coroutine with a stack
//! of its own, taken from a per-kernel pool of stacks ([`stack`]), with a guard
//! page whose fault is reported with the process's name ([`overflow`]). Its
//! context ([`Ctx`]) suspends the coroutine inside ordinary calls.

pub(crate) mod context;
pub(crate) mod hook;
pub(crate) mod overflow;
pub(crate) mod stack;
pub(crate) mod template;

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;

use corosensei::stack::Stack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::error::{ExitError, SpawnError};
use crate::kernel::pass::forget_quietly;
use crate::kernel::{Ended, Engine, Kernel, PPtr, Turn, Wait};
use crate::signal::{Payload, Pid};
use context::Ctx;
use stack::{ProcStack, StackPool};
use template::{Body, Sharing, Step, Template};

/// A kernel's pool of stacks, shared by its stackful engines: each holds it until
/// its stack is back, so that the pool (which owns the stacks' memory) outlives
/// every coroutine running on one of them.
#[derive(Clone)]
struct Pool(Rc<RefCell<StackPool>>);

/// The stackful engine's state in a kernel (its extension).
struct PerKernel {
    pool: Pool,
    bodies: Bodies,
    /// The stack size (as templates ask for it) whose stacks the pool could
    /// map last: spawns of that size take no stack from the pool (they get
    /// theirs when they first run), nor check again that one can be had.
    mapped: usize,
}

/// Template bodies as a kernel's processes hold them: an `Rc` of the
/// template's `Arc`, counted up and down with no atomic operation (a clone of
/// the `Arc` per process costs two), made once per template. The last few are
/// kept, keyed by the body's address (held, so that it is not reused while
/// kept) and its type.
#[derive(Default)]
struct Bodies {
    /// The body's address, the type of the `Rc`'s value, and the `Rc`.
    kept: Vec<(*const u8, TypeId, Rc<dyn Any>)>,
    /// The next one to replace, once `BODIES` are kept.
    next: usize,
}

/// Bodies kept.
const BODIES: usize = 4;

impl Bodies {
    /// `body`, as processes hold it.
    #[inline]
    fn get<I: 'static, O: 'static, A: 'static, R: 'static>(
        &mut self,
        body: &Body<I, O, A, R>,
    ) -> Rc<Body<I, O, A, R>> {
        let key = Arc::as_ptr(body).cast::<u8>();
        let ty = TypeId::of::<Body<I, O, A, R>>();
        for (k, t, rc) in &self.kept {
            if *k == key && *t == ty {
                let value = Rc::as_ptr(rc).cast::<Body<I, O, A, R>>();
                // SAFETY: `rc` was made as an `Rc<Body<I, O, A, R>>` (its type
                // id, recorded then, is this one's) and is alive: its value's
                // address, cast back to its own type, is what `Rc::into_raw`
                // of that `Rc` gives. The count goes up by the `Rc` returned
                // (what `rc.clone().downcast()` does, without asking the value
                // its type again).
                return unsafe {
                    Rc::increment_strong_count(value);
                    Rc::from_raw(value)
                };
            }
        }
        self.add(body)
    }

    /// Keeps `body`, in place of the oldest one kept once `BODIES` are.
    #[cold]
    #[inline(never)]
    fn add<I: 'static, O: 'static, A: 'static, R: 'static>(
        &mut self,
        body: &Body<I, O, A, R>,
    ) -> Rc<Body<I, O, A, R>> {
        let rc = Rc::new(body.clone());
        let kept = (
            Arc::as_ptr(body).cast::<u8>(),
            TypeId::of::<Body<I, O, A, R>>(),
            rc.clone() as Rc<dyn Any>,
        );
        if self.kept.len() < BODIES {
            self.kept.push(kept);
        } else {
            self.kept[self.next] = kept;
            self.next = (self.next + 1) % BODIES;
        }
        rc
    }
}

/// A stackful process's engine: its coroutine once it has started, and what
/// its stack's overflow report needs. The coroutine is resumed with whether it
/// is being stopped.
///
/// It is the head of every [`Stackful`] (`repr(C)`, first field), which the
/// engine dispatch resumes without the dynamic call once the coroutine exists.
pub(crate) struct StackfulCore {
    /// `None` until the first resume: the stack is taken from the pool then,
    /// not at the spawn, so that processes that are spawned but have not run
    /// yet hold no stack (skynet's million leaves run one after another on a
    /// few warm stacks instead of a million fresh ones).
    coroutine: Option<Coroutine<bool, Wait, Ended, ProcStack>>,
    /// Its stack's guard page and size (the size asked for, until it has a
    /// stack; then its size class), pid and name, for the stack overflow
    /// report.
    running: overflow::Running,
    pool: Pool,
}

/// The engine of a stackful process whose coroutine runs `F` (its body on a
/// context, made at the spawn): its [`StackfulCore`], then `F` until the first
/// resume moves it onto the stack it then gets.
#[repr(C)]
pub(crate) struct Stackful<F> {
    core: StackfulCore,
    start: Option<F>,
}

/// The engine layer's tag of a stackful engine (see
/// [`Dispatch`](crate::kernel::Dispatch)).
pub(crate) const KIND: u8 = 1;

impl StackfulCore {
    /// Runs the process until it waits (see [`Engine::resume`]), if its
    /// coroutine has started; `None` if not (its first resume is
    /// [`Stackful::start`]'s).
    #[inline(always)]
    pub(crate) fn run_started(&mut self, ended: &mut Option<Ended>) -> Option<Option<Wait>> {
        let coroutine = self.coroutine.as_mut()?;
        let running = overflow::Entered::new(&self.running);
        // (Resumed with `false`: not being stopped.)
        let result = coroutine.resume(false);
        drop(running);
        Some(match result {
            CoroutineResult::Yield(wait) => Some(wait),
            CoroutineResult::Return(end) => {
                *ended = Some(end);
                None
            }
        })
    }
}

impl<F: FnOnce(&Yielder<bool, Wait>, bool) -> Ended + 'static> Stackful<F> {
    /// The first resume: takes a stack from the pool, moves the body onto it
    /// and runs it. A stack that cannot be had (its slab cannot be mapped or
    /// guarded: out of memory or of memory mappings) fails the process, as
    /// running out of memory would later: the scheduler goes on.
    #[cold]
    #[inline(never)]
    fn start(&mut self, ended: &mut Option<Ended>) -> Option<Wait> {
        let Some(body) = self.start.take() else {
            // (Never: a resume after the end is not made.)
            *ended = Some(Ended::failed(ExitError::Failed(
                "resumed after its end".to_string(),
            )));
            return None;
        };
        let core = &mut self.core;
        let got = take_stack(&core.pool, core.running.stack_size);
        match got {
            Ok((stack, stack_size)) => {
                let (guard_start, guard_end) = stack.guard();
                debug_assert_eq!(stack.base().get() - guard_end, stack_size);
                core.running.guard_start = guard_start;
                core.running.stack_size = stack_size;
                core.coroutine = Some(Coroutine::with_stack(stack, body));
                core.run_started(ended).expect("started just now")
            }
            Err(e) => {
                // The body holds the arguments, whose `Drop` is user code.
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(body))) {
                    forget_quietly(payload);
                }
                *ended = Some(Ended::failed(ExitError::Failed(format!(
                    "cannot allocate a process stack: {e}"
                ))));
                None
            }
        }
    }
}

/// A stack of `size` from `pool` (see [`StackPool::get`]).
fn take_stack(pool: &Pool, size: usize) -> std::io::Result<(ProcStack, usize)> {
    #[cfg(test)]
    if tests::FAIL_NEXT_STACK.replace(false) {
        return Err(std::io::Error::other("no stack, as the test asked"));
    }
    pool.0.borrow_mut().get(size)
}

impl<F: FnOnce(&Yielder<bool, Wait>, bool) -> Ended + 'static> Engine for Stackful<F> {
    fn resume(self: Pin<&mut Self>, _turn: &Turn, ended: &mut Option<Ended>) -> Option<Wait> {
        // SAFETY: nothing in a `Stackful` is structurally pinned: its coroutine's
        // stack is apart, and the body is moved out whole before it runs, never
        // used in place.
        let this = unsafe { self.get_unchecked_mut() };
        match this.core.run_started(ended) {
            Some(wait) => wait,
            None => this.start(ended),
        }
    }

    fn stop(self: Pin<Box<Self>>, _turn: &Turn) {
        // Dropping it unwinds the coroutine and gives its stack back; the
        // destructors' panics end there.
        drop(self);
    }
}

impl<F> Drop for Stackful<F> {
    /// A process that never ran: drops its body (its arguments, whose `Drop`
    /// is user code: a panic of it ends here). Its core drops next.
    fn drop(&mut self) {
        if let Some(body) = self.start.take()
            && let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(body)))
        {
            forget_quietly(payload);
        }
    }
}

impl Drop for StackfulCore {
    /// Unwinds a suspended coroutine (its process is marked `killing`, or it is
    /// done): it is resumed once, and its context, seeing the kill, unwinds its
    /// stack from where it was suspended ([`context::KillUnwind`]), caught at the
    /// coroutine's root. (Not corosensei's forced unwind, which throws again at a
    /// destructor's suspension: a panic during unwinding, which aborts; a
    /// destructor cannot wait at all, see `Ctx`.) A body that catches the
    /// unwinding and suspends again is abandoned: its stack is never resumed,
    /// reused nor unmapped.
    ///
    /// The stop runs user code: the destructors of the locals, of a result.
    /// Their panics end here; a coroutine they leave unfinished is abandoned
    /// too.
    fn drop(&mut self) {
        let Some(mut coroutine) = self.coroutine.take() else {
            // Never started: it has no stack.
            return;
        };
        let reusable = match catch_unwind(AssertUnwindSafe(|| {
            Self::unwind(&self.running, &mut coroutine)
        })) {
            Ok(reusable) => reusable,
            Err(payload) => {
                forget_quietly(payload);
                coroutine.done()
            }
        };
        if !reusable {
            // Abandoned: its frames may hold pinned values, whose memory must stay
            // valid; the coroutine (which owns nothing else) is forgotten.
            self.pool.0.borrow_mut().abandon(self.running.guard_start);
            std::mem::forget(coroutine);
            return;
        }
        // The coroutine is done (it returned or was unwound), so its stack can
        // be taken back.
        let stack = coroutine.into_stack();
        self.pool.0.borrow_mut().put(self.running.stack_size, stack);
    }
}

impl StackfulCore {
    /// Ends the coroutine: a suspended one is resumed to unwind. (A coroutine
    /// is made at its process's first resume and resumed at once, so one that
    /// never ran is not met here: a process that never ran has no coroutine,
    /// and its body drops with its `Stackful`.) Whether its stack can be used
    /// again (`false`: it suspended during the unwinding, and is abandoned).
    fn unwind(
        running: &overflow::Running,
        coroutine: &mut Coroutine<bool, Wait, Ended, ProcStack>,
    ) -> bool {
        if coroutine.started() && !coroutine.done() {
            let entered = overflow::Entered::new(running);
            // Resumed with `true`: its context unwinds the stack.
            let result = coroutine.resume(true);
            drop(entered);
            match result {
                CoroutineResult::Yield(_) => return false,
                // (A result's `Drop` may panic: the caller catches it.)
                CoroutineResult::Return(ended) => drop(ended),
            }
        } else {
            // Done: nothing to do. (Not started, were it ever: drops its
            // closure, and never runs the body.)
            coroutine.force_unwind();
        }
        true
    }
}

/// Creates a stackful process (status `Created`) running `template`'s body on
/// `args`, with pid `pid` or the next one.
pub(crate) fn create<I: 'static, O: 'static, A: 'static, R: Payload, S: Sharing>(
    kernel: &mut Kernel<I, O>,
    template: &Template<I, O, A, R, S>,
    args: A,
    parent: Option<Pid>,
    pid: Option<Pid>,
) -> Result<PPtr<I, O>, SpawnError> {
    let journaled = kernel.spawning(&template.opts.name, &args, false)?;
    let per_kernel = kernel.extensions.get_or_insert_with(|| {
        overflow::install();
        hook::install();
        PerKernel {
            pool: Pool(Rc::default()),
            bodies: Bodies::default(),
            // (No size: `usize::MAX` is not a valid one.)
            mapped: usize::MAX,
        }
    });
    if !stack::valid_size(template.stack_size) {
        return Err(SpawnError::StackSize(template.stack_size));
    }
    if per_kernel.mapped != template.stack_size {
        // The first spawn of a stack size (since another's): its stacks can
        // be mapped, or the spawn fails here, not the process at its start.
        let mut pool = per_kernel.pool.0.borrow_mut();
        let (stack, class) = pool.get(template.stack_size).map_err(SpawnError::Stack)?;
        pool.put(class, stack);
        drop(pool);
        per_kernel.mapped = template.stack_size;
    }
    let pool = per_kernel.pool.clone();
    let body = per_kernel.bodies.get(&template.body);
    let p = kernel.new_record(&template.opts, parent, pid)?;
    // SAFETY: p was just made. The name is borrowed, not cloned (an atomic
    // count up and down per spawn): the record keeps it, never replaced, and
    // outlives its engine, whose overflow report reads it.
    let (pid, name) = unsafe { (p.as_ref().pid, &*p.as_ref().name) };
    // (Its stack's part is set when it gets one, at its first resume.)
    let running = overflow::Running {
        guard_start: 0,
        stack_size: template.stack_size,
        yielder: Cell::new(std::ptr::null()),
        pid,
        name: name.as_ptr(),
        name_len: name.len(),
    };
    let k = NonNull::from(&mut *kernel);
    let body = move |yielder: &Yielder<bool, Wait>, _: bool| {
        // (Resumed under `overflow::Entered`: the record is this process's.)
        hook::record_yielder(yielder);
        let mut ctx = Ctx::new(k, p, yielder);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut step = (**body)(&mut ctx, args);
            loop {
                match step {
                    Step::Done(r) => return Ok(r),
                    Step::Transition(t) => step = (t.run)(&mut ctx),
                    Step::Exit(e) => return Err(e),
                }
            }
        }));
        match outcome {
            Ok(Ok(r)) => Ended::returned(r),
            Ok(Err(e)) => Ended::failed(e),
            Err(payload) => {
                // SAFETY: the process's record outlives its coroutine.
                if unsafe { p.as_ref().killing } {
                    // Unwound by its stop (its end is the kernel's to record).
                    forget_quietly(payload);
                    return Ended::failed(ExitError::Killed(String::new()));
                }
                // (The payload's own `Drop` may panic: nothing escapes here.)
                Ended::from_panic(payload)
            }
        }
    };
    let engine = kernel.blocks.boxed(Stackful {
        core: StackfulCore {
            coroutine: None,
            running,
            pool,
        },
        start: Some(body),
    });
    kernel.install(p, engine, KIND);
    if let Some(args) = journaled {
        kernel.created(p, &template.opts.name, args);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use crate::error::ExitError;
    use crate::{Ctx, SimpleScheduler, Template};

    thread_local! {
        /// The next stack taken at a first resume cannot be had.
        pub(super) static FAIL_NEXT_STACK: Cell<bool> = const { Cell::new(false) };
    }

    /// Arguments whose `Drop` panics.
    struct Loud;

    impl Drop for Loud {
        fn drop(&mut self) {
            panic!("Loud dropped");
        }
    }

    /// A process's stack is taken at its first run: one that cannot be had
    /// then (out of memory or of mappings) fails that process, whose
    /// arguments are dropped (their panic ends there); the scheduler goes on.
    #[test]
    #[cfg_attr(miri, ignore = "stackful coroutines switch stacks in assembly")]
    fn a_stack_that_cannot_be_had_at_the_first_run_fails_the_process_alone() {
        let t = Template::new("t", |_: &mut Ctx<u8>, _loud: Loud| 1u64);
        let mut sched = SimpleScheduler::new();
        let h = sched.spawn(&t, Loud).expect("its stacks can be mapped");
        FAIL_NEXT_STACK.set(true);
        sched.run_until_idle();
        match sched.result(&h) {
            Some(Err(ExitError::Failed(why))) => {
                assert!(why.contains("cannot allocate a process stack"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        let ok = Template::new("ok", |_: &mut Ctx<u8>, n: u64| n + 1);
        let h = sched.spawn(&ok, 41).unwrap();
        sched.run_until_idle();
        assert_eq!(sched.result(&h), Some(Ok(42)));
        assert_eq!(sched.live(), 0);
    }
}
