//! A hostile "gateway": a raw HTTP/1.1 server on 127.0.0.1 that answers each path with
//! whatever bytes a test gives it (lies, floods, trickles, redirects, silence), and counts what
//! it receives. What a tenant can do by pointing `akeylessGatewayURL` at their own server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How one path is answered.
#[derive(Clone)]
pub enum Answer {
    /// `status` with a JSON body.
    Json(u16, serde_json::Value),
    /// `status`, extra header lines (`Name: value`), and a raw body.
    Raw(u16, Vec<String>, Vec<u8>),
    /// Exactly these bytes, then the connection is closed (malformed HTTP, lies).
    Bytes(Vec<u8>),
    /// 200 with a chunked body that never ends.
    Endless,
    /// A 200 head promising a body, then one byte every `every`, forever.
    Trickle(Duration),
    /// Reads the request and never answers.
    Silent,
    /// Reads the request and closes the connection without a word.
    Close,
}

impl Answer {
    pub fn ok(body: serde_json::Value) -> Answer {
        Answer::Json(200, body)
    }
}

#[derive(Default)]
struct Shared {
    routes: HashMap<String, Vec<Answer>>,
    received: Vec<(String, Vec<u8>)>,
}

pub struct HostileGateway {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileGateway {
    pub async fn start() -> HostileGateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, state.clone()));
            }
        });
        HostileGateway { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `path` with `answer` from now on.
    pub fn on(&self, path: &str, answer: Answer) -> &Self {
        self.lock().routes.insert(path.to_string(), vec![answer]);
        self
    }

    /// Answers `path` with each of `answers` in turn, the last one from then on.
    pub fn on_seq(&self, path: &str, answers: Vec<Answer>) -> &Self {
        self.lock().routes.insert(path.to_string(), answers);
        self
    }

    /// Paths of every request received, in order.
    pub fn paths(&self) -> Vec<String> {
        self.lock()
            .received
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Bodies of every request received at `path`, in order.
    pub fn bodies(&self, path: &str) -> Vec<Vec<u8>> {
        self.lock()
            .received
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Forgets every request received so far.
    pub fn clear(&self) {
        self.lock().received.clear();
    }

    pub fn count(&self, path: &str) -> usize {
        self.lock()
            .received
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for HostileGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (head and Content-Length body, bounded), then answers as configured.
async fn serve(mut stream: TcpStream, shared: Arc<Mutex<Shared>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length.min(1 << 24) {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_end..].to_vec();
    let answer = {
        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
        s.received.push((path.clone(), body));
        match s.routes.get_mut(&path) {
            Some(answers) if answers.len() > 1 => Some(answers.remove(0)),
            Some(answers) => answers.first().cloned(),
            None => None,
        }
    };
    let answer = answer.unwrap_or(Answer::Json(
        404,
        serde_json::json!({"error": format!("no route {path}")}),
    ));
    let _ = respond(&mut stream, answer).await;
}

async fn respond(stream: &mut TcpStream, answer: Answer) -> std::io::Result<()> {
    match answer {
        Answer::Json(status, value) => {
            let body = serde_json::to_vec(&value).unwrap_or_default();
            write_response(
                stream,
                status,
                &["Content-Type: application/json".into()],
                &body,
            )
            .await
        }
        Answer::Raw(status, headers, body) => write_response(stream, status, &headers, &body).await,
        Answer::Bytes(bytes) => {
            stream.write_all(&bytes).await?;
            stream.shutdown().await
        }
        Answer::Endless => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let piece = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
            loop {
                stream.write_all(piece.as_bytes()).await?;
            }
        }
        Answer::Trickle(every) => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{")
                .await?;
            loop {
                tokio::time::sleep(every).await;
                stream.write_all(b" ").await?;
            }
        }
        Answer::Silent => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        Answer::Close => stream.shutdown().await,
    }
}

async fn write_response(
    stream: &mut TcpStream,
    status: u16,
    headers: &[String],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} Hostile\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}
