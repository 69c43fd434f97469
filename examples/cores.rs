//! Many cores: a runtime of two cores, workers spread over them, and
//! back-pressure across cores: the Cores story of the tour
//! (`examples/tour.rs`). See `examples/stories/cores.rs` for what it shows and
//! the expected output.
//!
//! Run with `cargo run --example cores`.

#[path = "stories/cores.rs"]
mod story;

fn main() {
    story::run();
}
