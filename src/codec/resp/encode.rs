//! Commands as RESP arrays of bulk strings (what every Redis command is on the wire).

/// Appends `args` as one command: `*<n>\r\n` then `$<len>\r\n<arg>\r\n` per argument.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    push_header(out, b'*', args.len());
    for arg in args {
        push_bulk(out, arg.as_ref());
    }
}

fn push_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn push_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    push_header(out, b'$', arg.len());
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// Builds one command argument by argument, for commands whose argument count is only
/// known at the end (`EVALSHA sha n key… arg…`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommandBuf {
    args: Vec<Vec<u8>>,
}

impl CommandBuf {
    /// A command starting with `name`.
    pub fn new(name: &str) -> Self {
        Self {
            args: vec![name.as_bytes().to_vec()],
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<[u8]>) -> Self {
        self.args.push(arg.as_ref().to_vec());
        self
    }

    /// Appends one argument in place.
    pub fn push(&mut self, arg: impl AsRef<[u8]>) {
        self.args.push(arg.as_ref().to_vec());
    }

    /// The command's name (its first argument).
    pub fn name(&self) -> &[u8] {
        &self.args[0]
    }

    /// Appends the encoded command to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_command(&self.args, out);
    }
}
