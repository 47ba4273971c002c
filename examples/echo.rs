//! A WebSocket echo server, for the Autobahn conformance suite.
//!
//! ```text
//! cargo run --release --example echo -- 127.0.0.1:9001
//! ```

use pushman::{Limits, Message, Worker};

fn main() -> pushman::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let mut worker = Worker::<()>::new(&format!("websocket://{addr}"))?;
    // Autobahn sends messages of 16 MiB, echoed whole.
    worker.limits = Limits {
        max_package_size: 64 << 20,
        max_send_buffer_size: 64 << 20,
        ..Limits::default()
    };
    worker.on_message(|ctx, conn, msg| {
        let _ = match msg {
            Message::Text(text) => ctx.io.send(conn, text),
            Message::Binary(bytes) => ctx.io.send_binary(conn, bytes),
            _ => Ok(()),
        };
    });
    let mut runtime = pushman::Runtime::new(())?;
    let local = runtime.listen(worker)?;
    println!("echo: websocket port on {local}");
    runtime.run()
}
