//! Stackful templates: a body on a context of its own, plus options, and the
//! steps (results or transitions) a body returns.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::engine::stackful::context::Ctx;
use crate::error::SpawnError;
use crate::kernel::options::Options;
use crate::kernel::{Kernel, PPtr};
use crate::signal::{Payload, Pid};
use crate::template::{DEFAULT_STACK_SIZE, Spawnable, option_builders, sealed};

pub(crate) type Entry<I, O, R> = Box<dyn FnOnce(&mut Ctx<I, O>) -> Step<I, O, R>>;
/// A template's body. Not `Send` or `Sync` in its type: a [`Shared`] template's
/// is both (its constructors ask for it), a [`Local`] one's need not be.
pub(crate) type Body<I, O, A, R> = Arc<dyn Fn(&mut Ctx<I, O>, A) -> Step<I, O, R>>;

/// What a template may be shared with: other threads ([`Shared`], the default)
/// or only the thread that made it ([`Local`]). Sealed.
pub trait Sharing: sealed_sharing::Sealed + 'static {}

mod sealed_sharing {
    pub trait Sealed {}
}

/// A template that is `Send` and `Sync`: its body (and what it captures) is,
/// so the template can be made on one thread and spawned on another. Made by
/// [`Template::new`] and [`Template::stepping`].
#[derive(Debug, Clone, Copy)]
pub enum Shared {}

/// A template that stays on the thread that made it (`!Send`, `!Sync`): its
/// body may capture what is not `Send`, an `Rc<RefCell<_>>` that the
/// processes of one scheduler share, say. Made by [`Template::local`] and
/// [`Template::local_stepping`].
#[derive(Debug, Clone, Copy)]
pub enum Local {}

impl sealed_sharing::Sealed for Shared {}
impl sealed_sharing::Sealed for Local {}
impl Sharing for Shared {}
impl Sharing for Local {}

/// What a process body returns: a result, or a transition to another entry.
pub enum Step<I, O, R> {
    /// The process is done with this result.
    Done(R),
    /// The process continues in another template's body, keeping its pid, inbox and
    /// children (a TRANSITION signal).
    Transition(Transition<I, O, R>),
    /// The process ends with this reason (OTP's `exit(Reason)` as a body's
    /// last word): as [`Ctx::exit`](crate::Ctx::exit), without unwinding its
    /// stack (an unwinding costs some tens of thousands of instructions; a
    /// return, nothing).
    Exit(crate::ExitError),
}

/// A move to a new entry: another template's body with new arguments. Build it
/// with [`Transition::to`] and return it in [`Step::Transition`].
///
/// The process keeps its pid, inbox, children and stack; it takes the new
/// template's route, inbox capacity and overflow policy. The chain runs in a loop,
/// so a process can transition forever without growing its stack (tail recursion).
pub struct Transition<I, O, R> {
    pub(crate) run: Entry<I, O, R>,
}

impl<I: 'static, O: 'static, R: 'static> Transition<I, O, R> {
    /// A transition to `template`'s body with `args`.
    pub fn to<A: Payload, S: Sharing>(template: &Template<I, O, A, R, S>, args: A) -> Self {
        let template = template.clone();
        Transition {
            run: Box::new(move |ctx: &mut Ctx<I, O>| {
                ctx.begin_transition(&template, &args);
                (template.body)(ctx, args)
            }),
        }
    }
}

impl<I, O, R> fmt::Debug for Transition<I, O, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transition")
    }
}

/// A process definition: its body (a closure taking the context and the process's
/// arguments, returning its result) and its options. Cheap to clone and `Send`.
///
/// `I` is the inbound message type, `O` the outbound one (the same type, `M`, for
/// processes of a [`SimpleScheduler<M>`](crate::SimpleScheduler)), `A` the
/// arguments and `R` the result.
///
/// ```
/// use chronoflow::{Ctx, Template};
///
/// let doubler = Template::new("doubler", |ctx: &mut Ctx<u32>, times: u32| {
///     for _ in 0..times {
///         let n = ctx.receive();
///         ctx.send(n * 2);
///     }
///     times
/// })
/// .capacity(16);
/// assert_eq!(doubler.name(), "doubler");
/// ```
///
/// A body that never returns (a server's `loop { ... }`) has the result type `!`,
/// which is not a [`Payload`]: name the result type, as in
/// `Template::<M, M, (), ()>::new(...)` or with a closure return type `-> ()`.
pub struct Template<I, O, A, R, S: Sharing = Shared> {
    pub(crate) opts: Options<O>,
    pub(crate) body: Body<I, O, A, R>,
    pub(crate) stack_size: usize,
    _marker: PhantomData<fn(A) -> R>,
    _sharing: PhantomData<S>,
}

// SAFETY: a `Shared` template's body was made from a closure that is `Send` and
// `Sync` (`Template::new` and `Template::stepping`, its only constructors, ask
// for both), and its other fields are (`Options` holds its route as an `Arc` of a
// `Send + Sync` closure; the marker holds no value). The body's type forgets
// those bounds only so that `Local` templates can share the representation.
unsafe impl<I, O, A, R> Send for Template<I, O, A, R, Shared> {}
// SAFETY: as for `Send`: every field is `Sync` for a `Shared` template.
unsafe impl<I, O, A, R> Sync for Template<I, O, A, R, Shared> {}

impl<I, O, A, R, S: Sharing> Clone for Template<I, O, A, R, S> {
    fn clone(&self) -> Self {
        Template {
            opts: self.opts.clone(),
            body: self.body.clone(),
            stack_size: self.stack_size,
            _marker: PhantomData,
            _sharing: PhantomData,
        }
    }
}

impl<I, O, A, R, S: Sharing> fmt::Debug for Template<I, O, A, R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Template");
        self.opts.debug_into(&mut d);
        d.field("stack_size", &self.stack_size).finish()
    }
}

impl<I: 'static, O: 'static, A: 'static, R: 'static> Template<I, O, A, R, Shared> {
    /// A template whose body returns the process's result. The body must be
    /// `Send + Sync`, so that the template is (see [`Template::local`] for one
    /// that need not be).
    pub fn new<F>(name: &str, body: F) -> Self
    where
        F: Fn(&mut Ctx<I, O>, A) -> R + Send + Sync + 'static,
    {
        Self::stepping(name, move |ctx, args| Step::Done(body(ctx, args)))
    }

    /// A template whose body returns a [`Step`]: a result, a [`Transition`] to
    /// another entry, or an end with a reason ([`Step::Exit`]).
    pub fn stepping<F>(name: &str, body: F) -> Self
    where
        F: Fn(&mut Ctx<I, O>, A) -> Step<I, O, R> + Send + Sync + 'static,
    {
        Template::with_body(name, Arc::new(body))
    }
}

impl<I: 'static, O: 'static, A: 'static, R: 'static> Template<I, O, A, R, Local> {
    /// A template whose body need not be `Send` or `Sync`: it may capture an
    /// `Rc<RefCell<_>>` that the processes of one scheduler share, say. The
    /// template is then neither (it stays on the thread that made it, as its
    /// processes do); in everything else it is a template like another.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use chronoflow::{Ctx, SimpleScheduler, Template};
    ///
    /// let seen = Rc::new(Cell::new(0));
    /// let counter = seen.clone();
    /// let count = Template::local("count", move |ctx: &mut Ctx<u32>, _: ()| {
    ///     counter.set(counter.get() + ctx.receive());
    /// });
    /// let mut sched = SimpleScheduler::new();
    /// for n in 1..=3 {
    ///     let pid = sched.spawn_detached(&count, ()).unwrap();
    ///     sched.send(pid, n).unwrap();
    /// }
    /// sched.run_until_idle();
    /// assert_eq!(seen.get(), 6);
    /// ```
    ///
    /// It cannot cross threads:
    ///
    /// ```compile_fail
    /// use chronoflow::{Ctx, Template};
    ///
    /// let t = Template::local("t", |ctx: &mut Ctx<u32>, _: ()| ctx.receive());
    /// std::thread::spawn(move || drop(t)); // error: `Template<.., Local>` is not `Send`
    /// ```
    pub fn local<F>(name: &str, body: F) -> Self
    where
        F: Fn(&mut Ctx<I, O>, A) -> R + 'static,
    {
        Self::local_stepping(name, move |ctx, args| Step::Done(body(ctx, args)))
    }

    /// A [`local`](Template::local) template whose body returns a [`Step`].
    pub fn local_stepping<F>(name: &str, body: F) -> Self
    where
        F: Fn(&mut Ctx<I, O>, A) -> Step<I, O, R> + 'static,
    {
        Template::with_body(name, Arc::new(body))
    }
}

impl<I: 'static, O: 'static, A: 'static, R: 'static, S: Sharing> Template<I, O, A, R, S> {
    fn with_body(name: &str, body: Body<I, O, A, R>) -> Self {
        Template {
            opts: Options::new(name),
            body,
            stack_size: DEFAULT_STACK_SIZE,
            _marker: PhantomData,
            _sharing: PhantomData,
        }
    }

    option_builders!("[`Ctx::send`]");

    /// Sets the stack size in bytes (rounded up to whole pages; default
    /// [`DEFAULT_STACK_SIZE`]). Only the pages a process touches cost memory.
    ///
    /// What runs on it: the body and what it calls, the context's calls, and the
    /// destructors of its unwinding. A few pages do for a body that keeps little on
    /// its stack. Not on it: the panic hook of a panic in the process (std's
    /// default one, which captures a backtrace when `RUST_BACKTRACE` is set, needs
    /// tens of kilobytes), which runs on the scheduler's stack (the hook in place
    /// when the first stackful process is created; one set after that replaces
    /// chronoflow's and runs on the process's stack). A body that overflows its
    /// stack hits the guard page below it, and the program aborts with a message
    /// naming the process (see [`Ctx`]).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }
}

// The kernel is private: so is this trait, sealed.
#[allow(private_interfaces)]
impl<I: 'static, O: 'static, A: 'static, R: Payload, S: Sharing> sealed::Create<I, O, A>
    for Template<I, O, A, R, S>
{
    fn create_in(
        &self,
        kernel: &mut Kernel<I, O>,
        args: A,
        parent: Option<Pid>,
    ) -> Result<PPtr<I, O>, SpawnError> {
        crate::engine::stackful::create(kernel, self, args, parent, None)
    }

    fn template_name(&self) -> &Arc<str> {
        &self.opts.name
    }
}

impl<I: 'static, O: 'static, A: 'static, R: Payload, S: Sharing> Spawnable<I, O, A, R>
    for Template<I, O, A, R, S>
{
}
