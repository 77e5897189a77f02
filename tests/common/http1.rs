//! http1: the one HTTP/1.1 server loop the test servers share (the fake provider APIs and the
//! fault-injecting proxy): a thread per connection, one request per connection (every answer
//! says `Connection: close`), on 127.0.0.1 only. No thread pool: tiny_http's pool, which the
//! fakes used before, loses a wake-up when two connections arrive at once (its `spawn` sees a
//! worker counted as waiting that has already been woken), so a request could sit unanswered
//! until the client's 60 s timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A request as read from the wire: method, target (path and query, still encoded), headers
/// (names as sent) and body.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// `GET`, `DELETE`, …
    pub method: String,
    /// The request target: the path and the query.
    pub target: String,
    /// The headers, as sent.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

/// Reads one request from `stream`; `None` when the client closed the connection first.
pub fn read_request(stream: &TcpStream) -> std::io::Result<Option<RawRequest>> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(None);
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    // Bounded: a request head has at most this many lines here.
    for _ in 0..200 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().unwrap_or(0);
            }
            headers.push((name, value));
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    Ok(Some(RawRequest {
        method,
        target,
        headers,
        body,
    }))
}

/// Writes an answer and closes the exchange. `head_length` is the `Content-Length` of an
/// answer to `HEAD` (which has no body).
pub fn write_answer(
    writer: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    head_length: Option<String>,
) -> std::io::Result<()> {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        if !matches!(
            name.to_ascii_lowercase().as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let length = head_length.unwrap_or_else(|| body.len().to_string());
    head.push_str(&format!(
        "content-length: {length}\r\nconnection: close\r\n\r\n"
    ));
    writer.write_all(head.as_bytes())?;
    writer.write_all(body)?;
    writer.flush()
}

/// A listening server; stops accepting when dropped.
pub struct Listening {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    closed: Arc<AtomicBool>,
}

/// Listens on 127.0.0.1 and serves every connection on a thread of its own with `serve`.
pub fn listen(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Listening {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let closed = Arc::new(AtomicBool::new(false));
    let serve = Arc::new(serve);
    let accepting = closed.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if accepting.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let serve = serve.clone();
            std::thread::spawn(move || serve(stream));
        }
    });
    Listening { url, closed }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `closed`.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}
