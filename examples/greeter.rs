//! A standalone process fed with `push` and read with `pull`: the Greeter story of
//! the tour (`examples/tour.rs`). See `examples/stories/greeter.rs` for what it
//! shows and the expected output.
//!
//! Run with `cargo run --example greeter`.

#[path = "stories/greeter.rs"]
mod story;

fn main() {
    story::run();
}
