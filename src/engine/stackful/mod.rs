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
use std::mem::ManuallyDrop;
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

/// A stackful process's engine: its coroutine, and what its stack's overflow
/// report needs. The coroutine is resumed with whether it is being stopped.
pub(crate) struct Stackful {
    coroutine: ManuallyDrop<Coroutine<bool, Wait, Ended, ProcStack>>,
    /// Its stack's guard page, pid and name, for the stack overflow report.
    running: overflow::Running,
    stack_size: usize,
    pool: Pool,
}

/// The engine layer's tag of a stackful engine (see
/// [`Dispatch`](crate::kernel::Dispatch)).
pub(crate) const KIND: u8 = 1;

impl Stackful {
    /// Runs the process until it waits (see [`Engine::resume`]).
    #[inline(always)]
    pub(crate) fn run(&mut self, ended: &mut Option<Ended>) -> Option<Wait> {
        let running = overflow::Entered::new(&self.running);
        // (Resumed with `false`: not being stopped.)
        let result = self.coroutine.resume(false);
        drop(running);
        match result {
            CoroutineResult::Yield(wait) => Some(wait),
            CoroutineResult::Return(end) => {
                *ended = Some(end);
                None
            }
        }
    }
}

impl Engine for Stackful {
    fn resume(self: Pin<&mut Self>, _turn: Turn, ended: &mut Option<Ended>) -> Option<Wait> {
        // (Nothing in a `Stackful` is pinned: its coroutine's stack is apart.)
        self.get_mut().run(ended)
    }

    fn stop(self: Pin<Box<Self>>, _turn: Turn) {
        // Dropping it unwinds the coroutine and gives its stack back; the
        // destructors' panics end there.
        drop(self);
    }
}

impl Drop for Stackful {
    /// Unwinds a suspended coroutine (its process is marked `killing`, or it is
    /// done): it is resumed once, and its context, seeing the kill, unwinds its
    /// stack from where it was suspended ([`context::KillUnwind`]), caught at the
    /// coroutine's root. (Not corosensei's forced unwind, which throws again at a
    /// destructor's suspension: a panic during unwinding, which aborts; a
    /// destructor cannot wait at all, see `Ctx`.) A body that catches the
    /// unwinding and suspends again is abandoned: its stack is never resumed,
    /// reused nor unmapped.
    ///
    /// The stop runs user code: the destructors of the locals, of the arguments of
    /// a process that never ran, of a result. Their panics end here; a coroutine
    /// they leave unfinished is abandoned too.
    fn drop(&mut self) {
        let reusable = match catch_unwind(AssertUnwindSafe(|| self.unwind())) {
            Ok(reusable) => reusable,
            Err(payload) => {
                forget_quietly(payload);
                self.coroutine.done()
            }
        };
        if !reusable {
            // Abandoned: its frames may hold pinned values, whose memory must stay
            // valid; the coroutine (which owns nothing else) is forgotten.
            self.pool.0.borrow_mut().abandon(self.running.guard_start);
            return;
        }
        // SAFETY: the coroutine is not used after this; it is done (it returned or
        // was unwound), so its stack can be taken back.
        let coroutine = unsafe { ManuallyDrop::take(&mut self.coroutine) };
        let stack = coroutine.into_stack();
        self.pool.0.borrow_mut().put(self.stack_size, stack);
    }
}

impl Stackful {
    /// Ends the coroutine: a suspended one is resumed to unwind, one that never
    /// ran drops its closure. Whether its stack can be used again (`false`: it
    /// suspended during the unwinding, and is abandoned).
    fn unwind(&mut self) -> bool {
        if self.coroutine.started() && !self.coroutine.done() {
            let running = overflow::Entered::new(&self.running);
            // Resumed with `true`: its context unwinds the stack.
            let result = self.coroutine.resume(true);
            drop(running);
            match result {
                CoroutineResult::Yield(_) => return false,
                // (A result's `Drop` may panic: the caller catches it.)
                CoroutineResult::Return(ended) => drop(ended),
            }
        } else {
            // Not started: drops its closure. Done: nothing to do.
            self.coroutine.force_unwind();
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
        }
    });
    let pool = per_kernel.pool.clone();
    let body = per_kernel.bodies.get(&template.body);
    if !stack::valid_size(template.stack_size) {
        return Err(SpawnError::StackSize(template.stack_size));
    }
    let (stack, stack_size) = pool
        .0
        .borrow_mut()
        .get(template.stack_size)
        .map_err(SpawnError::Stack)?;
    let p = kernel.new_record(&template.opts, parent, pid)?;
    // SAFETY: p was just made. The name is borrowed, not cloned (an atomic
    // count up and down per spawn): the record keeps it, never replaced, and
    // outlives its engine, whose overflow report reads it.
    let (pid, name) = unsafe { (p.as_ref().pid, &*p.as_ref().name) };
    let (guard_start, guard_end) = stack.guard();
    let stack_base = stack.base().get();
    let running = overflow::Running {
        guard_start,
        guard_end,
        stack_base,
        stack_size,
        yielder: Cell::new(std::ptr::null()),
        pid,
        name: name.as_ptr(),
        name_len: name.len(),
    };
    let k = NonNull::from(&mut *kernel);
    let coroutine = Coroutine::with_stack(stack, move |yielder: &Yielder<bool, Wait>, _: bool| {
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
    });
    let engine = kernel.blocks.boxed(Stackful {
        coroutine: ManuallyDrop::new(coroutine),
        running,
        stack_size,
        pool,
    });
    kernel.install(p, engine, KIND);
    if let Some(args) = journaled {
        kernel.created(p, &template.opts.name, args);
    }
    Ok(p)
}
