//! A SPDY/3.1 client for the streaming server, on the project's own framing
//! (`ucr::streaming::spdy`), opening streams the way Kubernetes' clients do.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ucr::streaming::spdy::{Connection, Stream};

/// Upgrades an HTTP connection on `url` to SPDY/3.1 offering `protocols`; the
/// connection and the protocol the server chose, or the HTTP status it answered.
pub async fn connect(url: &str, protocols: &[&str]) -> Result<(Connection, String), u16> {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut tcp = TcpStream::connect(host).await.expect("connect");
    let mut request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n"
    );
    for p in protocols {
        request.push_str(&format!("X-Stream-Protocol-Version: {p}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.expect("request");
    // Byte by byte: whatever follows the response head is SPDY, not ours to read here.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = tcp.read_u8().await.expect("response");
        head.push(b);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    if status != 101 {
        return Err(status);
    }
    let chosen = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-stream-protocol-version")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    let (conn, _incoming) = Connection::client(tcp);
    Ok((conn, chosen))
}

/// Opens a stream of `streamType` `kind` with `extra` headers.
pub async fn open(conn: &Connection, kind: &str, extra: &[(&str, &str)], fin: bool) -> Stream {
    let mut headers = vec![("streamtype".to_string(), kind.to_string())];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    conn.open(headers, fin).await.expect("open stream")
}

/// Everything `stream` carries until its end.
pub async fn read_to_end(mut stream: Stream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all).await;
    all
}
