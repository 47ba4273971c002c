//! Helpers shared by the integration tests: servers on port 0, clients with timeouts.
#![allow(dead_code, unreachable_pub)]

mod clients;
pub use clients::*;
pub mod tls;

use pushman::{Runtime, StopHandle, Worker};
use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread::JoinHandle,
};

/// A runtime running in a thread; stopped (gracefully) on drop.
pub struct Server {
    pub addrs: Vec<SocketAddr>,
    stop: StopHandle,
    thread: Option<JoinHandle<pushman::Result<()>>>,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Stops the runtime and returns what `run` returned.
    pub fn stop(mut self) -> pushman::Result<()> {
        self.stop.stop();
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("runtime thread panicked")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.stop();
            let _ = thread.join();
        }
    }
}

/// Starts a runtime in a thread with the workers `build` makes (their addresses should use
/// port 0); returns once every worker listens.
pub fn serve<S: 'static>(build: impl FnOnce() -> (S, Vec<Worker<S>>) + Send + 'static) -> Server {
    serve_with(build, |_| {})
}

/// [`serve`], with `configure` called on the runtime before it listens (hooks, options).
pub fn serve_with<S: 'static>(
    build: impl FnOnce() -> (S, Vec<Worker<S>>) + Send + 'static,
    configure: impl FnOnce(&mut Runtime<S>) + Send + 'static,
) -> Server {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let (state, workers) = build();
        let mut runtime = Runtime::new(state)?;
        configure(&mut runtime);
        runtime.handle_signals(false);
        let addrs = workers
            .into_iter()
            .map(|w| runtime.listen(w))
            .collect::<Result<Vec<_>, _>>()?;
        tx.send((addrs, runtime.stop_handle())).unwrap();
        runtime.run()
    });
    let (addrs, stop) = rx.recv_timeout(TIMEOUT).expect("runtime did not start");
    Server {
        addrs,
        stop,
        thread: Some(thread),
    }
}

/// The path of an example binary built by `cargo test`.
pub fn example_path(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

/// A running example process, killed on drop.
pub struct Example {
    pub child: Child,
    pub addrs: Vec<SocketAddr>,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts example `name` with `args` and waits for `ports` lines `...port on ADDR` on its
/// stdout.
pub fn run_example(name: &str, args: &[&str], ports: usize) -> Example {
    let mut child = Command::new(example_path(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run example {name}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line
                .rsplit(" on ")
                .next()
                .and_then(|a| a.parse::<SocketAddr>().ok())
            {
                if tx.send(addr).is_err() {
                    break;
                }
            }
        }
    });
    let addrs = (0..ports)
        .map(|_| {
            rx.recv_timeout(TIMEOUT)
                .expect("example did not print its address")
        })
        .collect();
    Example { child, addrs }
}
