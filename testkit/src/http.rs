//! A small HTTP/1.1 server on 127.0.0.1 (a free port) for download tests.
//! Each path has a scripted behaviour; every request is recorded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Serves the body, honouring `Range: bytes=N-`.
    Serve(Vec<u8>),
    /// Like `Serve`, but the first request announces the whole length and
    /// closes the connection after `cut` bytes.
    CutOnce { body: Vec<u8>, cut: usize },
    /// Answers with this status and a short body.
    Status(u16),
    /// Sends headers and `after` bytes, then stays silent for `pause`.
    Stall { body: Vec<u8>, after: usize, pause: Duration },
    /// An HTML page (`Content-Type: text/html`), as Google Drive's confirmation page.
    Html(String),
    /// A body without Content-Length that goes on until the client hangs up
    /// (at most `max` bytes, so that a test always ends).
    Endless { max: usize },
    /// Serves the body after waiting `delay` (so that two clients overlap).
    Delayed { body: Vec<u8>, delay: Duration },
    /// Announces `len` bytes, then sends one every `every` (at most `len`).
    Drip { len: usize, every: Duration },
}

#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub range: Option<String>,
}

pub struct Server {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(routes: Vec<(&str, Behaviour)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: HashMap<String, Behaviour> = routes.into_iter().map(|(p, b)| (p.to_string(), b)).collect();
        let routes = Arc::new(Mutex::new(routes));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stop2) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (routes, reqs) = (routes.clone(), reqs.clone());
                std::thread::spawn(move || {
                    let _ = handle(stream, &routes, &reqs);
                });
            }
        });
        Server { port, requests, stop, thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(
    mut stream: TcpStream,
    routes: &Mutex<HashMap<String, Behaviour>>,
    requests: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    requests.lock().unwrap().push(Request { path: path.clone(), range: range.clone() });
    let behaviour = routes.lock().unwrap().get(&path).cloned();
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse::<usize>().ok());
    match behaviour {
        None => respond_status(&mut stream, 404),
        Some(Behaviour::Status(code)) => respond_status(&mut stream, code),
        Some(Behaviour::Serve(body)) => serve(&mut stream, &body, start),
        Some(Behaviour::CutOnce { body, cut }) => {
            // Later requests are served whole.
            routes.lock().unwrap().insert(path, Behaviour::Serve(body.clone()));
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
            stream.write_all(&body[..cut])?;
            stream.flush()
        }
        Some(Behaviour::Html(page)) => {
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}", page.len())
        }
        Some(Behaviour::Delayed { body, delay }) => {
            std::thread::sleep(delay);
            serve(&mut stream, &body, start)
        }
        Some(Behaviour::Endless { max }) => {
            write!(stream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let chunk = vec![b'x'; 1 << 16];
            let mut sent = 0;
            while sent < max {
                stream.write_all(&chunk)?;
                sent += chunk.len();
            }
            Ok(())
        }
        Some(Behaviour::Drip { len, every }) => {
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")?;
            for _ in 0..len {
                stream.write_all(b"x")?;
                stream.flush()?;
                std::thread::sleep(every);
            }
            Ok(())
        }
        Some(Behaviour::Stall { body, after, pause }) => {
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
            stream.write_all(&body[..after])?;
            stream.flush()?;
            std::thread::sleep(pause);
            Ok(())
        }
    }
}

fn serve(stream: &mut TcpStream, body: &[u8], start: Option<usize>) -> std::io::Result<()> {
    match start {
        Some(s) if s >= body.len() => {
            write!(stream, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", body.len())
        }
        Some(s) => {
            write!(
                stream,
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len() - 1,
                body.len(),
                body.len() - s
            )?;
            stream.write_all(&body[s..])
        }
        None => {
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
            stream.write_all(body)
        }
    }
}

fn respond_status(stream: &mut TcpStream, code: u16) -> std::io::Result<()> {
    let body = format!("status {code}");
    write!(stream, "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}
