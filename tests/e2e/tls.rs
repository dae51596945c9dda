//! HTTPS with certificates the test makes: HTTP/1.1 and HTTP/2 chosen by
//! ALPN, a renewed certificate taken on SIGHUP while a connection opened
//! before stays up, and a broken renewal that leaves the certificate in use.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::server::{Server, TempDir};

/// A certificate for `localhost` signed by the test's CA, as PEM files.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &self.0).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone() }
    }

    fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.0.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

fn install(leaf: &Leaf, dir: &Path) {
    std::fs::write(dir.join("cert.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &leaf.key_pem).unwrap();
}

/// One client connection, HTTP/1.1 or HTTP/2 as the handshake settled.
enum Conn {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// What a connection saw: the certificate the server presented.
struct Opened {
    conn: Conn,
    presented: CertificateDer<'static>,
    authority: String,
}

async fn open(addr: &str, connector: &TlsConnector) -> Result<Opened, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.map_err(|e| format!("handshake: {e}"))?;
    let (_, session) = tls.get_ref();
    let presented = session.peer_certificates().expect("a server certificate")[0].clone().into_owned();
    let h2 = session.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let conn = if h2 {
        let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
        tokio::spawn(conn);
        Conn::H2(sender)
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        Conn::H1(sender)
    };
    let port = addr.rsplit_once(':').unwrap().1;
    Ok(Opened { conn, presented, authority: format!("localhost:{port}") })
}

impl Opened {
    /// `method path` with the token and a JSON body: status, HTTP version
    /// and the answer's JSON.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, Version, serde_json::Value) {
        let request = |uri: String| {
            let body = body.as_ref().map(|b| b.to_string()).unwrap_or_default();
            Request::builder()
                .method(method)
                .uri(uri)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/scim+json")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        };
        let response = match &mut self.conn {
            Conn::H1(sender) => {
                let mut req = request(path.to_owned());
                req.headers_mut().insert("host", self.authority.parse().unwrap());
                sender.send_request(req).await.unwrap()
            }
            Conn::H2(sender) => {
                sender.send_request(request(format!("https://{}{path}", self.authority))).await.unwrap()
            }
        };
        let (status, version) = (response.status().as_u16(), response.version());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, version, serde_json::from_slice(&body).unwrap_or_default())
    }

    async fn get(&mut self, path: &str, token: &str) -> (u16, Version, serde_json::Value) {
        self.send("GET", path, token, None).await
    }
}

#[test]
fn https_speaks_both_versions_and_takes_a_new_certificate_on_sighup() {
    let dir = TempDir::new();
    let ca = Ca::new();
    let first = ca.leaf();
    install(&first, dir.path());
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let (mut server, boot) = Server::start_with_env(&[
        ("SCIMLET_TLS_CERT", cert.to_str().unwrap()),
        ("SCIMLET_TLS_KEY", key.to_str().unwrap()),
    ]);
    assert!(boot.tenant_url.starts_with("https://"), "{}", boot.tenant_url);
    let users = format!("{}/Users?count=1", scimlet_vectors::http::split_url(&boot.tenant_url).1);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // HTTP/2 when the client offers it, HTTP/1.1 when it does not.
        let mut h2 = open(&server.addr, &ca.connector(&[b"h2", b"http/1.1"])).await.unwrap();
        let (status, version, body) = h2.get(&users, &boot.token).await;
        assert_eq!((status, version), (200, Version::HTTP_2), "{body}");
        assert_eq!(body["totalResults"], 0);
        assert_eq!(h2.presented, first.der);
        let h1_connector = ca.connector(&[b"http/1.1"]);
        let mut kept = open(&server.addr, &h1_connector).await.unwrap();
        let (status, version, _) = kept.get(&users, &boot.token).await;
        assert_eq!((status, version), (200, Version::HTTP_11));
        // Answers carry https URLs: the scheme the client used.
        let base = scimlet_vectors::http::split_url(&boot.tenant_url).1;
        let user = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "tls@example.com"
        });
        let (status, _, created) = h2.send("POST", &format!("{base}/Users"), &boot.token, Some(user)).await;
        assert_eq!(status, 201, "{created}");
        let location = created["meta"]["location"].as_str().unwrap();
        assert!(location.starts_with(&format!("https://{}/", h2.authority)), "{location}");

        // A renewed certificate, then SIGHUP: new connections get it.
        let second = ca.leaf();
        install(&second, dir.path());
        hangup(&server);
        let renewed = wait_for_presented(&server.addr, &h1_connector, &second.der).await;
        assert!(renewed, "no new certificate after SIGHUP:\n{}", server.stderr_text());
        // The connection opened before the reload is still served.
        let (status, version, _) = kept.get(&users, &boot.token).await;
        assert_eq!((status, version), (200, Version::HTTP_11));
        assert_eq!(kept.presented, first.der);

        // A broken renewal (a key that is not the certificate's) is refused
        // and the certificate in use stays.
        std::fs::write(&key, ca.leaf().key_pem).unwrap();
        hangup(&server);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.stderr_text().contains("TLS certificate not reloaded") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(server.stderr_text().contains("TLS certificate not reloaded"), "{}", server.stderr_text());
        let mut after = open(&server.addr, &h1_connector).await.unwrap();
        assert_eq!(after.presented, second.der);
        assert_eq!(after.get(&users, &boot.token).await.0, 200);
    });
    let log = server.stop_and_read_log();
    assert!(log.contains("TLS certificate reloaded"), "{log}");
}

#[test]
fn a_certificate_that_cannot_be_used_stops_the_start() {
    let dir = TempDir::new();
    let ca = Ca::new();
    let leaf = ca.leaf();
    std::fs::write(dir.path().join("cert.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), ca.leaf().key_pem).unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let serve = |cert: &str, key: &str| {
        std::process::Command::new(crate::server::BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("scimlet.db"))
            .arg("--tls-cert")
            .arg(dir.path().join(cert))
            .arg("--tls-key")
            .arg(dir.path().join(key))
            .output()
            .unwrap()
    };
    for (cert, key, says) in [("cert.pem", "key.pem", "key.pem"), ("empty.pem", "key.pem", "no certificate")] {
        let out = serve(cert, key);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "nothing listened");
    }
    // One of the pair without the other is a usage error.
    let out = std::process::Command::new(crate::server::BIN)
        .args(["serve", "--tls-cert", "cert.pem", "--db", "/nonexistent/never-opened.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

fn hangup(server: &Server) {
    let status = std::process::Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Opens connections until the server presents `want` (a reload is
/// asynchronous to the signal), for up to ten seconds.
async fn wait_for_presented(addr: &str, connector: &TlsConnector, want: &CertificateDer<'static>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if open(addr, connector).await.is_ok_and(|o| &o.presented == want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
