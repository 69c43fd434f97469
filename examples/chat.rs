//! A chat room as a server with typed calls: the Chat story of the tour
//! (`examples/tour.rs`). See `examples/stories/chat.rs` for what it shows and
//! the expected output.
//!
//! Run with `cargo run --example chat`.

#[path = "stories/chat.rs"]
mod story;

fn main() {
    story::run();
}
