//! Two processes in a `SimpleScheduler` bouncing a message: the Echo story of the
//! tour (`examples/tour.rs`). See `examples/stories/echo.rs` for what it shows and
//! the expected output.
//!
//! Run with `cargo run --example echo`.

#[path = "stories/echo.rs"]
mod story;

fn main() {
    story::run();
}
