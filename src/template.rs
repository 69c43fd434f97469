//! What the templates of both engines share: how a scheduler or a parent spawns
//! one ([`Spawnable`]), and the builder methods of their options.

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

#[cfg_attr(
    feature = "stackless",
    doc = "A template that a scheduler or a parent can spawn: a stackful \
           [`Template`](crate::Template) or a [`StacklessTemplate`](crate::StacklessTemplate)."
)]
#[cfg_attr(
    not(feature = "stackless"),
    doc = "A template that a scheduler or a parent can spawn: a stackful \
           [`Template`](crate::Template)."
)]
/// `I` and `O` are the messages, `A` the arguments and `R` the result.
pub trait Spawnable<I, O, A, R>: sealed::Create<I, O, A> {}

/// The default stack size of a process: 256 KiB of address space, of which only the
/// pages a process touches cost memory.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The builder methods of the options (`kernel::options::Options`) a template keeps in its field `opts`;
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
        /// `u32::MAX` counts as `u32::MAX`. An
        /// [`Overflow::Unbounded`](crate::Overflow::Unbounded) inbox ignores it.
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
