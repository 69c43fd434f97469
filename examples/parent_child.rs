//! Children receive what their parent receives: the Parent/Child story of the tour
//! (`examples/tour.rs`). See `examples/stories/parent_child.rs` for what it shows
//! and the expected output.
//!
//! Run with `cargo run --example parent_child`.

#[path = "stories/parent_child.rs"]
mod story;

fn main() {
    story::run();
}
