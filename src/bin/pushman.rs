//! The `pushman` push daemon's command line.

fn main() {
    eprintln!("pushman: not built yet");
    std::process::exit(2);
}
