//! A supervisor restarts a crashed worker, reachable by name, until its budget
//! runs out: the Supervision story of the tour (`examples/tour.rs`). See
//! `examples/stories/supervision.rs` for what it shows and the expected output.
//!
//! Run with `cargo run --example supervision`.

#[path = "stories/supervision.rs"]
mod story;

fn main() {
    story::run();
}
