//! Selective receive with `select`: the Client/Server story of the tour
//! (`examples/tour.rs`). See `examples/stories/client_server.rs` for what it shows
//! and the expected output.
//!
//! Run with `cargo run --example client_server`.

#[path = "stories/client_server.rs"]
mod story;

fn main() {
    story::run();
}
