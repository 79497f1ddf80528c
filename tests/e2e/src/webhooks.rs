//! A webhook receiver for the tests: a real HTTP server on loopback that
//! records what it is sent and answers the statuses the test scripts, and a
//! Standard Webhooks signature check written here from the specification
//! (HMAC-SHA256 over `id.timestamp.body`), independently of the crate Kiln
//! signs with.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::EnvBuilder;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The `webhook_secret` the tests give the app.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `builder`'s app with webhooks on ([`SECRET`]), allowed to any port of
/// 127.0.0.1.
pub fn enabled(builder: EnvBuilder) -> EnvBuilder {
    builder
        .variable("webhook_secret", SECRET)
        .variable("webhook_allowed_hosts", "http://127.0.0.1:*")
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path (with query).
    pub path: String,
    /// The headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The status it was answered.
    pub answered: u16,
}

impl Received {
    /// The header's value; panics if absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no `{name}` header in {:?}", self.headers))
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON webhook body")
    }

    /// Checks the Standard Webhooks signature with `secret` (`whsec_…`):
    /// one of the space-separated `v1,<base64>` signatures must be the
    /// HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`.
    pub fn signature_is_valid(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
            .expect("a base64 secret");
        let mut signed = format!(
            "{}.{}.",
            self.header("webhook-id"),
            self.header("webhook-timestamp")
        )
        .into_bytes();
        signed.extend_from_slice(&self.body);
        let expected = format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &signed)));
        self.header("webhook-signature")
            .split(' ')
            .any(|signature| signature == expected)
    }
}

/// HMAC (RFC 2104) with SHA-256: `H((K ^ opad) || H((K ^ ipad) || m))`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let padded = |pad: u8| block_key.map(|byte| byte ^ pad);
    let inner = Sha256::new()
        .chain_update(padded(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(padded(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Statuses to answer next, in order; 204 once they run out.
    script: VecDeque<u16>,
}

/// A receiver listening on `127.0.0.1`, stopped when dropped.
pub struct WebhookReceiver {
    server: Arc<tiny_http::Server>,
    state: Arc<Mutex<State>>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Starts a receiver on an ephemeral loopback port; it answers `204`
    /// unless told otherwise.
    pub fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("a loopback port"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let state = Arc::new(Mutex::new(State::default()));
        let thread = {
            let (server, state) = (server.clone(), state.clone());
            std::thread::spawn(move || serve(&server, &state))
        };
        WebhookReceiver {
            server,
            state,
            port,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answers the next requests with `statuses`, in order, then `204`.
    pub fn answer_next(&self, statuses: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(statuses.iter().copied());
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits until `count` requests have arrived; panics after `timeout`.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} webhooks after {timeout:?}: {received:#?}",
                received.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(server: &tiny_http::Server, state: &Mutex<State>) {
    for mut request in server.incoming_requests() {
        let mut body = Vec::new();
        if request.as_reader().read_to_end(&mut body).is_err() {
            continue;
        }
        let headers = request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.to_string(),
                )
            })
            .collect();
        let answered = {
            let mut state = state.lock().unwrap();
            let status = state.script.pop_front().unwrap_or(204);
            state.received.push(Received {
                path: request.url().to_owned(),
                headers,
                body,
                answered: status,
            });
            status
        };
        request.respond(tiny_http::Response::empty(answered)).ok();
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2: the hand-written HMAC is HMAC.
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// The example of the Standard Webhooks specification's test suite.
    #[test]
    fn the_specification_example_verifies() {
        let mut received = Received {
            path: "/".into(),
            headers: vec![
                ("webhook-id".into(), "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
                ("webhook-timestamp".into(), "1614265330".into()),
                (
                    "webhook-signature".into(),
                    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
                ),
            ],
            body: br#"{"test": 2432232314}"#.to_vec(),
            answered: 204,
        };
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert!(received.signature_is_valid(secret));
        received.body.push(b' ');
        assert!(!received.signature_is_valid(secret));
    }
}
