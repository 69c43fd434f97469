//! Request and reply with `call`: the Call story of the tour
//! (`examples/tour.rs`). See `examples/stories/call.rs` for what it shows and
//! the expected output.
//!
//! Run with `cargo run --example call`.

#[path = "stories/call.rs"]
mod story;

fn main() {
    story::run();
}
