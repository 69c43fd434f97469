//! A hundred thousand stackless processes: the Swarm story of the tour
//! (`examples/tour.rs`). See `examples/stories/swarm.rs` for what it shows and the
//! expected output.
//!
//! Run with `cargo run --release --example swarm`.
#![feature(coroutines)]

#[path = "stories/swarm.rs"]
mod story;

fn main() {
    story::run();
}
