//! Remote commands and port-forwarding over SPDY/3.1 (waits for the `spdy` module).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::tokens::Request;
use crate::core::Core;

pub async fn serve<S>(_core: Arc<Core>, _request: Request, _io: S, _protocol: &str)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tracing::warn!("SPDY streaming is not wired yet");
}
