//! A loopback TCP proxy in front of a test registry that counts blob downloads and can
//! break one: cut the connection, or stop sending, after some bytes of a blob response.
//! Registries speak HTTP/1.1 here (plain HTTP, no h2c), so request lines are readable.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Close both sides after this many bytes of a blob response.
    CutBlobAfter(usize),
    /// Send this many bytes of a blob response, then nothing more (socket stays open).
    StallBlobAfter(usize),
}

pub struct Proxy {
    pub addr: String,
    fault: Arc<Mutex<Fault>>,
    /// `GET …/blobs/…` requests seen, by path.
    blob_gets: Arc<Mutex<Vec<String>>>,
    armed: Arc<AtomicBool>,
}

impl Proxy {
    pub async fn start(target: &str, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let proxy = Proxy {
            addr,
            fault: Arc::new(Mutex::new(fault)),
            blob_gets: Arc::default(),
            armed: Arc::new(AtomicBool::new(true)),
        };
        let (fault, gets, armed, target) = (
            proxy.fault.clone(),
            proxy.blob_gets.clone(),
            proxy.armed.clone(),
            target.to_string(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                tokio::spawn(relay(
                    client,
                    server,
                    fault.clone(),
                    gets.clone(),
                    armed.clone(),
                ));
            }
        });
        proxy
    }

    /// Stops injecting faults (later transfers go through whole).
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    pub fn blob_gets(&self) -> Vec<String> {
        self.blob_gets.lock().expect("lock").clone()
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    fault: Arc<Mutex<Fault>>,
    gets: Arc<Mutex<Vec<String>>>,
    armed: Arc<AtomicBool>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let blob_response = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let (b, s) = (blob_response.clone(), sent.clone());
    let upstream = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let text = String::from_utf8_lossy(&buf[..n]);
            for line in text.lines().filter(|l| l.starts_with("GET ")) {
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let is_blob = path.contains("/blobs/");
                b.store(is_blob, Ordering::SeqCst);
                s.store(0, Ordering::SeqCst);
                if is_blob {
                    gets.lock().expect("lock").push(path);
                }
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let f = *fault.lock().expect("lock");
        let limit = match f {
            Fault::CutBlobAfter(l) | Fault::StallBlobAfter(l) => Some(l),
            Fault::None => None,
        };
        let before = sent.fetch_add(n, Ordering::SeqCst);
        match limit {
            Some(limit)
                if armed.load(Ordering::SeqCst)
                    && blob_response.load(Ordering::SeqCst)
                    && before + n > limit =>
            {
                let keep = limit.saturating_sub(before);
                let _ = cw.write_all(&buf[..keep]).await;
                let _ = cw.flush().await;
                if matches!(f, Fault::StallBlobAfter(_)) {
                    // Hold the connection open, sending nothing, until the client gives up.
                    let mut sink = [0u8; 1024];
                    while let Ok(n) = sr.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                }
                break;
            }
            _ => {
                if cw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    upstream.abort();
}
