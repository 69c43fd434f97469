//! Supervised children on other cores: a child spec whose process is placed.

use std::rc::Rc;

use crate::engine::stackful::context::Ctx;
use crate::otp::supervisor::ChildSpec;
use crate::otp::supervisor::spec::ChildOpts;
use crate::runtime::Placement;
use crate::signal::Payload;
use crate::template::Spawnable;

impl<M: Send + 'static> ChildSpec<M> {
    /// A permanent worker `id` that runs `template` with `args` on the core
    /// `at` picks, in a [`Runtime`](crate::runtime::Runtime) of several
    /// cores ([`Ctx::spawn_link_at`](crate::Ctx::spawn_link_at)): the
    /// supervisor restarts it there, as it would on its own core, and stops
    /// it there. Outside a runtime it is [`ChildSpec::new`].
    pub fn placed<T, A, R>(id: &str, at: Placement, template: &T, args: A) -> ChildSpec<M>
    where
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
        A: Clone + Send + 'static,
        R: Payload,
    {
        let template = template.clone();
        ChildSpec {
            id: id.into(),
            start: Rc::new(move |ctx: &mut Ctx<M>| ctx.spawn_link_at(at, &template, args.clone())),
            opts: ChildOpts::new(),
        }
    }
}
