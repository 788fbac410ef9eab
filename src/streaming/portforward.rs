//! PortForward: one client connection to a port on the pod's loopback, carried as a data
//! channel and an error channel (a SPDY stream pair per connection, or a WebSocket
//! channel pair per port). Connections are made inside the pod's network namespace, so
//! a server that listens only on 127.0.0.1 in the pod is reachable, as with kubelet's
//! runtimes; a host-network pod's ports are the node's loopback.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, DuplexStream};

use super::remotecommand::{Reader, Writer};

/// How long connecting to the pod's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the pod's ports are.
#[derive(Debug, Clone)]
pub struct Target {
    pub pod: String,
    /// The pod's network namespace; `None`: the host's (a host-network pod).
    pub netns: Option<PathBuf>,
}

impl Target {
    pub async fn connect(&self, port: u16) -> std::io::Result<tokio::net::TcpStream> {
        let stream = match &self.netns {
            Some(netns) => {
                let netns = netns.clone();
                tokio::task::spawn_blocking(move || {
                    crate::sys::netns::connect_loopback(&netns, port, CONNECT_TIMEOUT)
                })
                .await
                .map_err(std::io::Error::other)??
            }
            None => {
                let v4 = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    tokio::net::TcpStream::connect(("127.0.0.1", port)),
                );
                match v4.await {
                    Ok(Ok(s)) => return Ok(s),
                    first => {
                        let v6 = tokio::net::TcpStream::connect(("::1", port)).await;
                        return v6.map_err(|_| match first {
                            Ok(Err(e)) => e,
                            _ => std::io::ErrorKind::TimedOut.into(),
                        });
                    }
                }
            }
        };
        stream.set_nonblocking(true)?;
        tokio::net::TcpStream::from_std(stream)
    }
}

/// Carries one connection: `data` both ways until either side is done; a failure to
/// connect goes on `error` in kubelet's words, which clients print.
pub async fn forward(target: &Target, port: u16, data: (Reader, Writer), mut error: Writer) {
    let (mut from_client, mut to_client) = data;
    let tcp = match target.connect(port).await {
        Ok(tcp) => tcp,
        Err(e) => {
            let message = format!(
                "error forwarding port {port} to pod {}: failed to connect to localhost:{port} inside its network namespace: {e}",
                target.pod
            );
            let _ = error.write_all(message.as_bytes()).await;
            let _ = error.shutdown().await;
            let _ = to_client.shutdown().await;
            return;
        }
    };
    let (mut tcp_r, mut tcp_w) = tcp.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut from_client, &mut tcp_w).await;
        // The client is done sending: half-close toward the server, which may still
        // answer.
        let _ = tcp_w.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut tcp_r, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    // The server's end of the reply ends the connection; the client's end of the request
    // alone does not.
    tokio::pin!(upstream, downstream);
    tokio::select! {
        () = &mut upstream => downstream.await,
        () = &mut downstream => {}
    }
    let _ = error.shutdown().await;
}

/// Splits a WebSocket channel pair into the reader and writer halves `forward` takes.
pub fn halves(incoming: DuplexStream, outgoing: DuplexStream) -> (Reader, Writer) {
    (Box::pin(incoming), Box::pin(outgoing))
}

/// The ports of a WebSocket port-forward request: `?port=80&port=8080` (a comma list
/// too). Every one must be a port number.
pub fn ports_from_query(query: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for pair in query.split('&') {
        let Some(value) = pair.strip_prefix("port=") else {
            continue;
        };
        for p in value.split(',') {
            match p.trim().parse::<u16>() {
                Ok(port) if port > 0 => ports.push(port),
                _ => return Err(format!("invalid port {p:?}")),
            }
        }
    }
    if ports.is_empty() {
        return Err("no port given (query parameter `port`)".into());
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_query() {
        assert_eq!(ports_from_query("port=80&port=8080"), Ok(vec![80, 8080]));
        assert_eq!(ports_from_query("port=80,443"), Ok(vec![80, 443]));
        assert!(ports_from_query("port=0").is_err());
        assert!(ports_from_query("port=99999").is_err());
        assert!(ports_from_query("x=1").is_err());
    }
}
