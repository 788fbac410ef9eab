//! `ucr logs [-f]`: the CRI log file the container's status names, each line
//! (`<time> <stream> <P|F> <text>`, as kubelet reads them) printed as the container wrote
//! it, stdout to stdout and stderr to stderr. `-f` follows the file until the container
//! is no longer running, across kubelet's rotation (the file renamed, then a new one
//! opened at the same path by ReopenContainerLog) and across truncation.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;

use super::{ClientError, Conn};
use crate::config::LogsFlags;

/// How often a followed file is read again when it had nothing new.
const POLL: Duration = Duration::from_millis(100);
/// How often the container is asked whether it still runs.
const CHECK_RUNNING: Duration = Duration::from_secs(1);

pub async fn logs(flags: LogsFlags) -> Result<(), ClientError> {
    let conn = Conn::open(&flags.endpoint.endpoint).await?;
    let id = conn.container_id(&flags.id).await?;
    let (path, mut running) = status(&conn, &id).await?;
    let path = path.ok_or_else(|| ClientError::NoLog {
        container: id.clone(),
    })?;
    let mut log = Followed::open(&path)?;
    log.drain()?;
    if !flags.follow {
        return Ok(());
    }
    let mut checked = Instant::now();
    loop {
        let got = log.drain()?;
        // Rotation is only acted on once the old file is read to its end.
        let switched = log.follow_rotation()?;
        if got || switched {
            continue;
        }
        if !running {
            return Ok(());
        }
        if checked.elapsed() >= CHECK_RUNNING {
            // Once it stopped, one more pass picks up its last words.
            running = status(&conn, &id).await?.1;
            checked = Instant::now();
            continue;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The container's log path (if it has one) and whether it runs.
async fn status(conn: &Conn, id: &str) -> Result<(Option<PathBuf>, bool), ClientError> {
    let status = conn
        .runtime()
        .container_status(cri::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        })
        .await
        .map_err(ClientError::call("ContainerStatus"))?
        .into_inner()
        .status
        .unwrap_or_default();
    let running = status.state == cri::ContainerState::ContainerRunning as i32;
    let path = (!status.log_path.is_empty()).then(|| PathBuf::from(status.log_path));
    Ok((path, running))
}

/// A log file being read, and the identity of what is open (to notice rotation).
struct Followed {
    path: PathBuf,
    reader: BufReader<File>,
    inode: (u64, u64),
    /// A line read up to the end of the file without its newline: the writer is still
    /// writing it.
    pending: String,
}

impl Followed {
    fn open(path: &Path) -> Result<Followed, ClientError> {
        let io = |source| ClientError::Io {
            op: "open log",
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        Ok(Followed {
            path: path.to_path_buf(),
            reader: BufReader::new(file),
            inode: (meta.dev(), meta.ino()),
            pending: String::new(),
        })
    }

    /// Prints every complete line there is; whether there was any.
    fn drain(&mut self) -> Result<bool, ClientError> {
        let mut any = false;
        loop {
            let n = self
                .reader
                .read_line(&mut self.pending)
                .map_err(|source| ClientError::Io {
                    op: "read log",
                    path: self.path.display().to_string(),
                    source,
                })?;
            if n == 0 || !self.pending.ends_with('\n') {
                return Ok(any);
            }
            any = true;
            print_line(&self.pending);
            self.pending.clear();
        }
    }

    /// Moves to the file now at the path if it is another one (rotated), or back to the
    /// start if ours was truncated. Whether anything changed.
    fn follow_rotation(&mut self) -> Result<bool, ClientError> {
        let Ok(now) = std::fs::metadata(&self.path) else {
            // Renamed away, the new one not opened yet: wait for it.
            return Ok(false);
        };
        if (now.dev(), now.ino()) != self.inode {
            // What was written to the old file until the writer switched is read first.
            self.drain()?;
            *self = Followed::open(&self.path)?;
            return Ok(true);
        }
        let position = self.reader.stream_position().unwrap_or(0);
        if now.len() < position {
            self.reader
                .seek(SeekFrom::Start(0))
                .map_err(|source| ClientError::Io {
                    op: "rewind log",
                    path: self.path.display().to_string(),
                    source,
                })?;
            self.pending.clear();
            return Ok(true);
        }
        Ok(false)
    }
}

/// One CRI log line, printed as the container wrote it: a partial (`P`) line without the
/// newline the logger added, so split lines join up again.
fn print_line(line: &str) {
    let (stream, text) = match parse(line) {
        Some((stream, true, text)) => (stream, format!("{text}\n")),
        Some((stream, false, text)) => (stream, text.to_string()),
        None => ("stdout", line.to_string()),
    };
    let _ = if stream == "stderr" {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
}

/// `<time> <stream> <tag> <text>\n` → (stream, whether the line is full, text).
fn parse(line: &str) -> Option<(&str, bool, &str)> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let mut parts = line.splitn(4, ' ');
    let _time = parts.next()?;
    let stream = parts.next().filter(|s| *s == "stdout" || *s == "stderr")?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or("");
    // The tag may carry more flags after a colon in later formats; P/F comes first.
    let full = !tag.starts_with('P');
    Some((stream, full, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_are_split_into_stream_and_text() {
        assert_eq!(
            parse("2024-01-01T00:00:00.000000001Z stdout F hello world\n"),
            Some(("stdout", true, "hello world"))
        );
        assert_eq!(
            parse("2024-01-01T00:00:00Z stderr P part"),
            Some(("stderr", false, "part"))
        );
        assert_eq!(
            parse("2024-01-01T00:00:00Z stdout F "),
            Some(("stdout", true, ""))
        );
        assert_eq!(parse("not a cri line"), None);
    }

    #[test]
    fn a_followed_file_is_read_across_rotation_and_truncation() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("0.log");
        std::fs::write(&path, "t stdout F one\nt stdout F tw").expect("write");
        let mut log = Followed::open(&path).expect("open");
        assert!(log.drain().expect("drain"), "the full line is read");
        assert_eq!(log.pending, "t stdout F tw", "the half line waits");
        // kubelet's rotation: rename, then a new file at the path.
        std::fs::rename(&path, dir.path().join("0.log.1")).expect("rename");
        assert!(
            !log.follow_rotation().expect("gone"),
            "waits for the new file"
        );
        std::fs::write(&path, "t stdout F three\n").expect("new");
        assert!(log.follow_rotation().expect("rotated"));
        assert!(log.drain().expect("drain"));
        assert!(log.pending.is_empty());
        // Truncation in place: back to the start.
        std::fs::write(&path, "").expect("truncate");
        assert!(log.follow_rotation().expect("truncated"));
    }
}
