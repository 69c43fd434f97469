//! Templates: a process body plus its options.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::context::Ctx;
use crate::error::SpawnError;
use crate::inbox::{DEFAULT_CAPACITY, Overflow};
use crate::kernel::{Kernel, PPtr};
use crate::signal::{Payload, Pid};

pub(crate) mod sealed {
    use std::sync::Arc;

    use crate::error::SpawnError;
    use crate::kernel::{Kernel, PPtr};
    use crate::signal::Pid;

    /// How a template makes a process in a kernel (not for outside use: the
    /// kernel is private).
    #[allow(private_interfaces)]
    pub trait Create<I, O, A> {
        /// Creates the process (status `Created`), a child of `parent` if given.
        fn create_in(
            &self,
            kernel: &mut Kernel<I, O>,
            args: A,
            parent: Option<Pid>,
        ) -> Result<PPtr<I, O>, SpawnError>;

        /// The template's name.
        fn template_name(&self) -> &Arc<str>;

        /// Whether it makes stackless processes.
        fn stackless(&self) -> bool {
            false
        }
    }
}

/// A template that a scheduler or a parent can spawn: a stackful [`Template`] or
/// a [`StacklessTemplate`](crate::StacklessTemplate). `I` and `O` are the
/// messages, `A` the arguments and `R` the result.
pub trait Spawnable<I, O, A, R>: sealed::Create<I, O, A> {}

/// The default stack size of a process: 256 KiB of address space, of which only the
/// pages a process touches cost memory.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

pub(crate) type Route<O> = Arc<dyn Fn(&O) -> Option<Pid> + Send + Sync>;
/// The options that stackful and stackless templates share: the name, the
/// route, and the inbox's capacity and overflow policy.
pub(crate) struct Options<O> {
    pub(crate) name: Arc<str>,
    pub(crate) route: Option<Route<O>>,
    pub(crate) capacity: usize,
    pub(crate) overflow: Overflow,
}

impl<O> Options<O> {
    /// The defaults: no route, [`DEFAULT_CAPACITY`], [`Overflow::Backoff`].
    pub(crate) fn new(name: &str) -> Self {
        Options {
            name: name.into(),
            route: None,
            capacity: DEFAULT_CAPACITY,
            overflow: Overflow::Backoff,
        }
    }

    /// Its fields, for a template's `Debug`.
    pub(crate) fn debug_into(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("name", &self.name)
            .field("routed", &self.route.is_some())
            .field("capacity", &self.capacity)
            .field("overflow", &self.overflow);
    }
}

impl<O> Clone for Options<O> {
    fn clone(&self) -> Self {
        Options {
            name: self.name.clone(),
            route: self.route.clone(),
            capacity: self.capacity,
            overflow: self.overflow,
        }
    }
}

/// The builder methods of the [`Options`] a template keeps in its field `opts`;
/// `$send` names what sends along the route, for the docs.
macro_rules! option_builders {
    ($send:literal) => {
        #[doc = concat!("Sets the route: where ", $send, " delivers an outgoing message.")]
        /// `None` means no route: the message is kept with the undelivered ones.
        pub fn route<F>(mut self, route: F) -> Self
        where
            F: Fn(&O) -> Option<Pid> + Send + Sync + 'static,
        {
            self.opts.route = Some(Arc::new(route));
            self
        }

        /// Sets the inbox capacity (at least 1; default
        /// [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY)). A capacity above
        /// `u32::MAX` counts as `u32::MAX`.
        pub fn capacity(mut self, capacity: usize) -> Self {
            self.opts.capacity = capacity.max(1);
            self
        }

        /// Sets what a full inbox does (default
        /// [`Overflow::Backoff`](crate::Overflow::Backoff)).
        pub fn overflow(mut self, overflow: crate::Overflow) -> Self {
            self.opts.overflow = overflow;
            self
        }

        /// The template's name.
        pub fn name(&self) -> &str {
            &self.opts.name
        }
    };
}
pub(crate) use option_builders;

pub(crate) type Entry<I, O, R> = Box<dyn FnOnce(&mut Ctx<I, O>) -> Step<I, O, R>>;
pub(crate) type Body<I, O, A, R> = Arc<dyn Fn(&mut Ctx<I, O>, A) -> Step<I, O, R> + Send + Sync>;

/// What a process body returns: a result, or a transition to another entry.
pub enum Step<I, O, R> {
    /// The process is done with this result.
    Done(R),
    /// The process continues in another template's body, keeping its pid, inbox and
    /// children (a TRANSITION signal).
    Transition(Transition<I, O, R>),
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
    pub fn to<A: Payload>(template: &Template<I, O, A, R>, args: A) -> Self {
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
pub struct Template<I, O, A, R> {
    pub(crate) opts: Options<O>,
    pub(crate) body: Body<I, O, A, R>,
    pub(crate) stack_size: usize,
    _marker: PhantomData<fn(A) -> R>,
}

impl<I, O, A, R> Clone for Template<I, O, A, R> {
    fn clone(&self) -> Self {
        Template {
            opts: self.opts.clone(),
            body: self.body.clone(),
            stack_size: self.stack_size,
            _marker: PhantomData,
        }
    }
}

impl<I, O, A, R> fmt::Debug for Template<I, O, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Template");
        self.opts.debug_into(&mut d);
        d.field("stack_size", &self.stack_size).finish()
    }
}

impl<I: 'static, O: 'static, A: 'static, R: 'static> Template<I, O, A, R> {
    /// A template whose body returns the process's result.
    pub fn new<F>(name: &str, body: F) -> Self
    where
        F: Fn(&mut Ctx<I, O>, A) -> R + Send + Sync + 'static,
    {
        Self::stepping(name, move |ctx, args| Step::Done(body(ctx, args)))
    }

    /// A template whose body returns a [`Step`]: a result, or a [`Transition`] to
    /// another entry.
    pub fn stepping<F>(name: &str, body: F) -> Self
    where
        F: Fn(&mut Ctx<I, O>, A) -> Step<I, O, R> + Send + Sync + 'static,
    {
        Template {
            opts: Options::new(name),
            body: Arc::new(body),
            stack_size: DEFAULT_STACK_SIZE,
            _marker: PhantomData,
        }
    }

    option_builders!("[`Ctx::send`]");

    /// Sets the stack size in bytes (rounded up to whole pages; default
    /// [`DEFAULT_STACK_SIZE`]). Only the pages a process touches cost memory.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }
}

// The kernel is private: so is this trait, sealed.
#[allow(private_interfaces)]
impl<I: 'static, O: 'static, A: 'static, R: Payload> sealed::Create<I, O, A>
    for Template<I, O, A, R>
{
    fn create_in(
        &self,
        kernel: &mut Kernel<I, O>,
        args: A,
        parent: Option<Pid>,
    ) -> Result<PPtr<I, O>, SpawnError> {
        kernel.create(self, args, parent, None)
    }

    fn template_name(&self) -> &Arc<str> {
        &self.opts.name
    }
}

impl<I: 'static, O: 'static, A: 'static, R: Payload> Spawnable<I, O, A, R>
    for Template<I, O, A, R>
{
}
