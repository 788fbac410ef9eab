//! `ucr exec`: without `-i`/`-t`, the CRI's ExecSync (output collected, then printed);
//! with them, the CRI's Exec and its streaming URL, over WebSocket
//! (`streaming::client`), with the local terminal in raw mode and its size following
//! the window (SIGWINCH), as `kubectl exec -it` does. The command's exit code becomes
//! ours.

use std::io::{IsTerminal, Write};

use k8s_cri::v1 as cri;
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};

use super::{ClientError, Conn};
use crate::config::ExecCmdFlags;
use crate::streaming::client::{self as stream, Event};
use crate::sys::console::window_size;
use crate::sys::terminal::RawMode;

/// Runs the command; its exit code.
pub async fn exec(flags: ExecCmdFlags) -> Result<i32, ClientError> {
    let conn = Conn::open(&flags.endpoint.endpoint).await?;
    let id = conn.container_id(&flags.id).await?;
    if !flags.interactive && !flags.tty {
        return exec_sync(&conn, id, flags.command, flags.timeout).await;
    }
    let url = conn
        .runtime()
        .exec(cri::ExecRequest {
            container_id: id,
            cmd: flags.command,
            tty: flags.tty,
            stdin: flags.interactive,
            stdout: true,
            // A terminal has one output; asking for a second is an error in the CRI.
            stderr: !flags.tty,
        })
        .await
        .map_err(ClientError::call("Exec"))?
        .into_inner()
        .url;
    let (mut tx, mut rx) = stream::connect(&url).await?;
    let stdin = std::io::stdin();
    // Raw only when both ends are terminals: `echo x | ucr exec -it` stays cooked.
    let _raw = if flags.tty && flags.interactive && stdin.is_terminal() {
        Some(RawMode::enter(&stdin).map_err(ClientError::Terminal)?)
    } else {
        None
    };
    if flags.tty {
        if let Ok(size) = window_size(&stdin) {
            tx.resize(size.cols, size.rows).await?;
        }
    }
    let writer = tokio::spawn(forward_input(tx, flags.interactive, flags.tty));
    let code = loop {
        match rx.next().await? {
            Some(Event::Stdout(b)) => write_out(&mut std::io::stdout(), &b)?,
            Some(Event::Stderr(b)) => write_out(&mut std::io::stderr(), &b)?,
            Some(Event::Exit(code)) => break code,
            None => {
                return Err(stream::StreamClientError::Failed(
                    "the server closed the session without an exit status".into(),
                )
                .into())
            }
        }
    };
    writer.abort();
    Ok(code)
}

/// Sends our stdin (until its end, then says so) and our terminal's new sizes, until the
/// session is over (the task is then aborted) or the connection breaks.
async fn forward_input(
    mut tx: stream::Sender,
    interactive: bool,
    tty: bool,
) -> Result<(), stream::StreamClientError> {
    let mut winch = signal(SignalKind::window_change()).ok();
    let mut input = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    let mut open = interactive;
    loop {
        tokio::select! {
            n = input.read(&mut buf), if open => match n {
                Ok(0) | Err(_) => {
                    open = false;
                    tx.close_stdin().await?;
                }
                Ok(n) => tx.stdin(&buf[..n]).await?,
            },
            Some(()) = async { winch.as_mut()?.recv().await }, if tty => {
                if let Ok(size) = window_size(std::io::stdin()) {
                    tx.resize(size.cols, size.rows).await?;
                }
            }
            else => std::future::pending::<()>().await,
        }
    }
}

fn write_out(to: &mut impl Write, bytes: &[u8]) -> Result<(), ClientError> {
    to.write_all(bytes)
        .and_then(|()| to.flush())
        .map_err(ClientError::Terminal)
}

async fn exec_sync(
    conn: &Conn,
    id: String,
    cmd: Vec<String>,
    timeout: i64,
) -> Result<i32, ClientError> {
    let reply = conn
        .runtime()
        .exec_sync(cri::ExecSyncRequest {
            container_id: id,
            cmd,
            timeout,
        })
        .await
        .map_err(ClientError::call("ExecSync"))?
        .into_inner();
    write_out(&mut std::io::stdout(), &reply.stdout)?;
    write_out(&mut std::io::stderr(), &reply.stderr)?;
    Ok(reply.exit_code)
}
