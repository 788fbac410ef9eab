//! A Mesos sandbox's `stdout` and `stderr`: the container's output as it wrote it, byte
//! for byte, one file per stream, as Mesos's executors leave them in the sandbox
//! (ucr-spec.md §8.9). No framing, no timestamps: `READ_FILE` pages through them by
//! offset, and a terminal's output (all of it stdout) lands in `stdout`.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::{LogError, Stream};

/// The files' mode when the monitor has to create them (the sandbox's owner usually made
/// them first, owned by the container's user; see `isolators::volume::sandbox_path`).
const FILE_MODE: u32 = 0o640;

/// Appends each stream to its own file in a directory.
#[derive(Debug)]
pub struct FilesWriter {
    dir: PathBuf,
    files: [File; 2],
}

impl FilesWriter {
    /// Opens (creating when missing) `dir/stdout` and `dir/stderr` for appending, without
    /// following a symlink at either: the container owns the sandbox and may have planted
    /// one (at a restart of the monitor's files, say) pointing at a host file.
    pub fn open(dir: &Path) -> Result<Self, LogError> {
        Ok(Self {
            dir: dir.to_path_buf(),
            files: [
                open(dir, Stream::Stdout.as_str())?,
                open(dir, Stream::Stderr.as_str())?,
            ],
        })
    }

    /// Appends `data` to `stream`'s file, whole: a full disk loses what could not be
    /// written, never the stream (the caller drains the pipe either way).
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<(), LogError> {
        self.files[stream.index()]
            .write_all(data)
            .map_err(|source| LogError::Write {
                path: self.dir.join(stream.as_str()),
                stream: stream.as_str(),
                source,
            })
    }

    /// Opens both files again (after someone moved them away), keeping the old ones on
    /// failure.
    pub fn reopen(&mut self) -> Result<(), LogError> {
        let reopen = |name: &str| {
            open_file(&self.dir, name).map_err(|source| LogError::Reopen {
                path: self.dir.join(name),
                source,
            })
        };
        let files = [
            reopen(Stream::Stdout.as_str())?,
            reopen(Stream::Stderr.as_str())?,
        ];
        self.files = files;
        Ok(())
    }
}

fn open(dir: &Path, name: &str) -> Result<File, LogError> {
    open_file(dir, name).map_err(|source| LogError::Open {
        path: dir.join(name),
        source,
    })
}

fn open_file(dir: &Path, name: &str) -> io::Result<File> {
    let root = crate::sys::inroot::Root::open(dir)?;
    crate::sys::inroot::open_append_beneath(root.as_fd(), Path::new(name), FILE_MODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_gets_its_raw_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = FilesWriter::open(dir.path()).expect("open");
        w.write(Stream::Stdout, b"out\r\nno newline")
            .expect("write");
        w.write(Stream::Stderr, b"err\n").expect("write");
        w.write(Stream::Stdout, b"\x00more").expect("write");
        let read = |n| std::fs::read(dir.path().join(n)).expect("read");
        assert_eq!(read("stdout"), b"out\r\nno newline\x00more");
        assert_eq!(read("stderr"), b"err\n");
        // A second writer (a restarted monitor) appends.
        let mut again = FilesWriter::open(dir.path()).expect("open");
        again.write(Stream::Stderr, b"again").expect("write");
        assert_eq!(read("stderr"), b"err\nagain");
    }

    #[test]
    fn a_planted_symlink_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let target = outside.path().join("victim");
        std::fs::write(&target, b"keep").expect("write");
        std::os::unix::fs::symlink(&target, dir.path().join("stderr")).expect("symlink");
        let e = FilesWriter::open(dir.path()).expect_err("a symlink");
        assert!(e.to_string().contains("stderr"), "{e}");
        assert_eq!(std::fs::read(&target).expect("read"), b"keep");
    }
}
