//! Back-pressure with a small inbox: a fast producer backs off (BACKOFF signals)
//! until a slow consumer makes room: the Backoff story of the tour
//! (`examples/tour.rs`). See `examples/stories/backoff.rs` for what it shows and
//! the expected output.
//!
//! Run with `cargo run --example backoff`.

#[path = "stories/backoff.rs"]
mod story;

fn main() {
    story::run();
}
