//! A WebSocket echo server, for the Autobahn conformance suite; `--tls` serves wss://
//! with a self-signed certificate made at start (rcgen).
//!
//! ```text
//! cargo run --release --example echo -- 127.0.0.1:9001 [--tls]
//! ```

use pushman::{Limits, Message, TlsConfig, Worker};

fn main() -> pushman::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let mut worker = Worker::<()>::new(&format!("websocket://{addr}"))?;
    if std::env::args().any(|a| a == "--tls") {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let made = rcgen::generate_simple_self_signed(names).expect("a certificate");
        let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
        worker.tls = Some(TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).expect("valid"));
    }
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
    let scheme = if std::env::args().any(|a| a == "--tls") {
        "wss"
    } else {
        "ws"
    };
    println!("echo: websocket port on {local} ({scheme})");
    runtime.run()
}
