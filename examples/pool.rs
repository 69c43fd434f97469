//! A dynamic supervisor of workers and an agent keeping their tally: the Pool
//! story of the tour (`examples/tour.rs`). See `examples/stories/pool.rs` for
//! what it shows and the expected output.
//!
//! Run with `cargo run --example pool`.

#[path = "stories/pool.rs"]
mod story;

fn main() {
    story::run();
}
