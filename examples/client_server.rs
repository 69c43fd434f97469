//! Selective receive with `select`: the README's Client/Server story. See
//! `examples/stories/client_server.rs` for what it shows and the expected output.
//!
//! Run with `cargo run --example client_server`.

#[path = "stories/client_server.rs"]
mod story;

fn main() {
    story::run();
}
