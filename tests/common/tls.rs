//! TLS test parts made in the test: a CA with an intermediate (rcgen), server certificates
//! it signs, and tungstenite/rustls clients that trust only it. One copy, included by the
//! library's tests and the server's (by path).
#![allow(dead_code, unreachable_pub)]

use super::{Ws, TIMEOUT};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PublicKeyData,
};
use rustls::{
    pki_types::{CertificateDer, ServerName},
    ClientConfig, ClientConnection, RootCertStore, StreamOwned,
};
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::Arc,
};
use tungstenite::{stream::MaybeTlsStream, Connector};

/// A root CA and an intermediate it signed; server certificates are signed by the
/// intermediate, so the server must send a chain.
pub struct TestCa {
    root: CertifiedIssuer<'static, KeyPair>,
    intermediate: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate for `localhost` and 127.0.0.1, with its chain and key.
pub struct ServerCert {
    /// Leaf, then intermediate, PEM.
    pub chain_pem: String,
    /// The leaf's key, PKCS#8 PEM.
    pub key_pem: String,
    /// The leaf, DER: what a client sees as the peer's first certificate.
    pub leaf: CertificateDer<'static>,
    /// base64(SHA-256(SubjectPublicKeyInfo)): Chromium's `--ignore-certificate-errors-spki-list`.
    pub spki_sha256: String,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

impl TestCa {
    pub fn new() -> Self {
        let root = CertifiedIssuer::self_signed(
            ca_params("pushman test root"),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let intermediate = CertifiedIssuer::signed_by(
            ca_params("pushman test intermediate"),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        Self { root, intermediate }
    }

    /// A server certificate named `name` (its common name, to tell certificates apart).
    pub fn server_cert(&self, name: &str) -> ServerCert {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_after = rcgen::date_time_ymd(2040, 6, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.intermediate).unwrap();
        use base64::Engine;
        use sha2::Digest;
        let spki = sha2::Sha256::digest(key.subject_public_key_info());
        ServerCert {
            chain_pem: format!("{}{}", cert.pem(), self.intermediate.pem()),
            key_pem: key.serialize_pem(),
            leaf: cert.der().clone(),
            spki_sha256: base64::engine::general_purpose::STANDARD.encode(spki),
        }
    }

    /// A client configuration that trusts only this CA's root.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.root.der().clone()).unwrap();
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        Arc::new(config)
    }

    /// PEM of the root, for clients that take a CA file.
    pub fn root_pem(&self) -> String {
        self.root.pem()
    }
}

/// A `wss://` client connected to `addr` at `path` (as `localhost`), with read timeouts.
#[track_caller]
pub fn wss_connect(addr: SocketAddr, path: &str, ca: &TestCa) -> Ws {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let url = format!("wss://localhost:{}{path}", addr.port());
    let (ws, _) = tungstenite::client_tls_with_config(
        url,
        stream,
        None,
        Some(Connector::Rustls(ca.client_config())),
    )
    .expect("TLS and WebSocket handshake");
    ws
}

/// The certificate the server presented on `ws`'s connection.
pub fn peer_leaf(ws: &Ws) -> CertificateDer<'static> {
    match ws.get_ref() {
        MaybeTlsStream::Rustls(tls) => tls.conn.peer_certificates().expect("a certificate")[0]
            .clone()
            .into_owned(),
        _ => panic!("not a TLS connection"),
    }
}

/// A plain rustls client stream (for HTTP over TLS, or raw bytes).
pub fn tls_stream(addr: SocketAddr, ca: &TestCa) -> StreamOwned<ClientConnection, TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut config = (*ca.client_config()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
        .unwrap();
    StreamOwned::new(conn, stream)
}

/// Sends an HTTP/1.1 request over TLS and returns the whole response (the server closes).
pub fn https_get(addr: SocketAddr, path: &str, ca: &TestCa) -> String {
    let mut tls = tls_stream(addr, ca);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        Ok(_) => {}
        // A FIN without close_notify still ends the response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("reading the response: {e}"),
    }
    String::from_utf8_lossy(&response).into_owned()
}
