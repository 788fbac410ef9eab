//! The streaming server's home: kubelet hands `Exec`, `Attach` and `PortForward` clients a
//! URL, and the client (kubectl, crictl, critest) upgrades an HTTP request on it to a
//! multiplexed connection carrying stdin, stdout, stderr, resize and error streams. The
//! server itself will live here; for now this holds the SPDY/3.1 protocol it speaks.

pub mod spdy;
