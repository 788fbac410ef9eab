use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

/// One parsed record, split the way kubelet's `parseCRILog` splits it.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    stamp: String,
    stream: String,
    tag: String,
    content: Vec<u8>,
}

fn records(path: &Path) -> Vec<Record> {
    let bytes = fs::read(path).expect("read log");
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "log must end with a record terminator"
    );
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut parts = line.splitn(4, |&b| b == b' ');
            let mut next = || {
                parts
                    .next()
                    .unwrap_or_else(|| panic!("short record {:?}", String::from_utf8_lossy(line)))
            };
            let stamp = String::from_utf8(next().to_vec()).expect("utf8 stamp");
            let stream = String::from_utf8(next().to_vec()).expect("utf8 stream");
            let tag = String::from_utf8(next().to_vec()).expect("utf8 tag");
            let content = next().to_vec();
            Record {
                stamp,
                stream,
                tag,
                content,
            }
        })
        .collect()
}

/// (stream, tag, content) of every record, the shape most assertions want.
fn shape(path: &Path) -> Vec<(String, String, Vec<u8>)> {
    records(path)
        .into_iter()
        .map(|r| (r.stream, r.tag, r.content))
        .collect()
}

fn rec(stream: &str, tag: &str, content: &[u8]) -> (String, String, Vec<u8>) {
    (stream.to_string(), tag.to_string(), content.to_vec())
}

/// What `kubectl logs` prints for one stream: F content plus newline, P content without.
fn reassemble(path: &Path, stream: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records(path).into_iter().filter(|r| r.stream == stream) {
        out.extend_from_slice(&r.content);
        if r.tag == "F" {
            out.push(b'\n');
        }
    }
    out
}

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn now() -> SystemTime {
    at(1_475_713_029, 669_794_202)
}

fn writer() -> (tempfile::TempDir, PathBuf, CriLogWriter) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("0.log");
    let w = CriLogWriter::open(&path).expect("open");
    (dir, path, w)
}

/// `len` bytes of a repeating, position-revealing pattern (never '\n' or '\r').
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn short_line_is_one_full_record() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"hello\n", now()).expect("write");
    let got = fs::read_to_string(&path).expect("read");
    assert_eq!(got, "2016-10-06T00:17:09.669794202Z stdout F hello\n");
}

#[test]
fn several_lines_in_one_write() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stderr, b"one\ntwo\nthree\n", now())
        .expect("write");
    assert_eq!(
        shape(&path),
        vec![
            rec("stderr", "F", b"one"),
            rec("stderr", "F", b"two"),
            rec("stderr", "F", b"three"),
        ]
    );
}

#[test]
fn line_split_across_writes_becomes_one_record_stamped_when_completed() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"hel", at(1, 0)).expect("write");
    w.write(Stream::Stdout, b"lo wor", at(2, 0)).expect("write");
    assert_eq!(
        fs::read(&path).expect("read"),
        b"",
        "nothing before the newline"
    );
    w.write(Stream::Stdout, b"ld\nnext", at(3, 0))
        .expect("write");
    let recs = records(&path);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].content, b"hello world");
    assert_eq!(recs[0].stamp, "1970-01-01T00:00:03.000000000Z");
}

#[test]
fn exactly_max_line_is_one_full_record() {
    let (_dir, path, mut w) = writer();
    let mut line = pattern(MAX_LINE);
    line.push(b'\n');
    w.write(Stream::Stdout, &line, now()).expect("write");
    assert_eq!(shape(&path), vec![rec("stdout", "F", &line[..MAX_LINE])]);
}

#[test]
fn exactly_max_line_in_small_pieces_is_one_full_record() {
    let (_dir, path, mut w) = writer();
    let content = pattern(MAX_LINE);
    for piece in content.chunks(1000) {
        w.write(Stream::Stdout, piece, now()).expect("write");
    }
    w.write(Stream::Stdout, b"\n", now()).expect("write");
    assert_eq!(shape(&path), vec![rec("stdout", "F", &content)]);
}

#[test]
fn one_byte_over_max_is_partial_then_full() {
    let (_dir, path, mut w) = writer();
    let content = pattern(MAX_LINE + 1);
    let mut line = content.clone();
    line.push(b'\n');
    w.write(Stream::Stdout, &line, now()).expect("write");
    assert_eq!(
        shape(&path),
        vec![
            rec("stdout", "P", &content[..MAX_LINE]),
            rec("stdout", "F", &content[MAX_LINE..]),
        ]
    );
}

#[test]
fn forty_kib_line_is_two_partials_and_the_rest() {
    let (_dir, path, mut w) = writer();
    let content = pattern(40 * 1024);
    let mut line = content.clone();
    line.push(b'\n');
    w.write(Stream::Stdout, &line, now()).expect("write");
    assert_eq!(
        shape(&path),
        vec![
            rec("stdout", "P", &content[..MAX_LINE]),
            rec("stdout", "P", &content[MAX_LINE..2 * MAX_LINE]),
            rec("stdout", "F", &content[2 * MAX_LINE..]),
        ]
    );
    assert_eq!(reassemble(&path, "stdout"), line);
}

#[test]
fn forty_kib_line_in_odd_pieces_splits_at_the_same_places() {
    let (_dir, path, mut w) = writer();
    let content = pattern(40 * 1024);
    for piece in content.chunks(777) {
        w.write(Stream::Stdout, piece, now()).expect("write");
    }
    // Two partials are out as soon as their bytes are known to be content.
    assert_eq!(records(&path).len(), 2);
    w.write(Stream::Stdout, b"\n", now()).expect("write");
    let tags: Vec<_> = records(&path).into_iter().map(|r| r.tag).collect();
    assert_eq!(tags, ["P", "P", "F"]);
    let mut expected = content;
    expected.push(b'\n');
    assert_eq!(reassemble(&path, "stdout"), expected);
}

#[test]
fn interleaved_stdout_and_stderr_partials_are_kept_apart() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"out-a ", now()).expect("write");
    w.write(Stream::Stderr, b"err-a ", now()).expect("write");
    w.write(Stream::Stdout, b"out-b\nout-2", now())
        .expect("write");
    w.write(Stream::Stderr, b"err-b\n", now()).expect("write");
    w.write(Stream::Stdout, b"\n", now()).expect("write");
    assert_eq!(
        shape(&path),
        vec![
            rec("stdout", "F", b"out-a out-b"),
            rec("stderr", "F", b"err-a err-b"),
            rec("stdout", "F", b"out-2"),
        ]
    );
}

#[test]
fn empty_lines_are_full_records_with_no_content() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"\n\nx\n", now()).expect("write");
    let raw = fs::read_to_string(&path).expect("read");
    assert!(
        raw.starts_with("2016-10-06T00:17:09.669794202Z stdout F \n"),
        "{raw:?}"
    );
    assert_eq!(
        shape(&path),
        vec![
            rec("stdout", "F", b""),
            rec("stdout", "F", b""),
            rec("stdout", "F", b"x"),
        ]
    );
}

#[test]
fn eof_writes_unterminated_line_as_partial() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"done\nno newline", now())
        .expect("write");
    w.flush_partial(Stream::Stdout, now()).expect("flush");
    assert_eq!(
        shape(&path),
        vec![
            rec("stdout", "F", b"done"),
            rec("stdout", "P", b"no newline")
        ]
    );
    assert_eq!(reassemble(&path, "stdout"), b"done\nno newline");
}

#[test]
fn eof_with_nothing_pending_writes_nothing() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"done\n", now()).expect("write");
    w.flush_partial(Stream::Stdout, now()).expect("flush");
    w.flush_partial(Stream::Stderr, now()).expect("flush");
    assert_eq!(shape(&path), vec![rec("stdout", "F", b"done")]);
}

#[test]
fn eof_only_flushes_its_own_stream() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"out", now()).expect("write");
    w.write(Stream::Stderr, b"err", now()).expect("write");
    w.flush_partial(Stream::Stderr, now()).expect("flush");
    assert_eq!(shape(&path), vec![rec("stderr", "P", b"err")]);
    w.write(Stream::Stdout, b"put\n", now()).expect("write");
    assert_eq!(
        shape(&path),
        vec![rec("stderr", "P", b"err"), rec("stdout", "F", b"output")]
    );
}

#[test]
fn crlf_terminator_is_dropped_like_containerd() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"dos\r\nmid\rdle\n\r\r\n", now())
        .expect("write");
    assert_eq!(
        shape(&path),
        vec![
            rec("stdout", "F", b"dos"),
            rec("stdout", "F", b"mid\rdle"),
            rec("stdout", "F", b"\r"),
        ]
    );
}

#[test]
fn crlf_split_across_writes_is_still_a_terminator() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"dos\r", now()).expect("write");
    w.write(Stream::Stdout, b"\n", now()).expect("write");
    assert_eq!(shape(&path), vec![rec("stdout", "F", b"dos")]);
}

#[test]
fn max_line_then_split_crlf_is_one_full_record() {
    let (_dir, path, mut w) = writer();
    let content = pattern(MAX_LINE);
    let mut first = content.clone();
    first.push(b'\r');
    w.write(Stream::Stdout, &first, now()).expect("write");
    assert_eq!(records(&path).len(), 0, "the \\r may be half of \\r\\n");
    w.write(Stream::Stdout, b"\n", now()).expect("write");
    assert_eq!(shape(&path), vec![rec("stdout", "F", &content)]);
}

#[test]
fn max_line_then_lone_cr_is_content_of_the_next_record() {
    let (_dir, path, mut w) = writer();
    let content = pattern(MAX_LINE);
    let mut first = content.clone();
    first.push(b'\r');
    w.write(Stream::Stdout, &first, now()).expect("write");
    w.write(Stream::Stdout, b"x\n", now()).expect("write");
    assert_eq!(
        shape(&path),
        vec![rec("stdout", "P", &content), rec("stdout", "F", b"\rx")]
    );
}

#[test]
fn eof_after_max_line_and_cr_keeps_the_cr() {
    let (_dir, path, mut w) = writer();
    let content = pattern(MAX_LINE);
    let mut first = content.clone();
    first.push(b'\r');
    w.write(Stream::Stdout, &first, now()).expect("write");
    w.flush_partial(Stream::Stdout, now()).expect("flush");
    assert_eq!(
        shape(&path),
        vec![rec("stdout", "P", &content), rec("stdout", "P", b"\r")]
    );
}

#[test]
fn reopen_after_rename_sends_later_records_to_the_new_file() {
    let (dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"before\nhalf-", now())
        .expect("write");
    let rotated = dir.path().join("0.log.20161006-001709");
    fs::rename(&path, &rotated).expect("rename");
    // Until reopened the writer still appends to the renamed file, as kubelet expects.
    w.write(Stream::Stdout, b"still old\n", now())
        .expect("write");
    w.reopen().expect("reopen");
    w.write(Stream::Stdout, b"after\n", now()).expect("write");
    assert_eq!(
        shape(&rotated),
        vec![
            rec("stdout", "F", b"before"),
            rec("stdout", "F", b"half-still old")
        ]
    );
    assert_eq!(shape(&path), vec![rec("stdout", "F", b"after")]);
}

#[test]
fn reopen_carries_an_unterminated_line_into_the_new_file() {
    let (dir, path, mut w) = writer();
    w.write(Stream::Stderr, b"across ", now()).expect("write");
    fs::rename(&path, dir.path().join("0.log.1")).expect("rename");
    w.reopen().expect("reopen");
    w.write(Stream::Stderr, b"rotation\n", now())
        .expect("write");
    assert_eq!(shape(&path), vec![rec("stderr", "F", b"across rotation")]);
}

#[test]
fn failed_reopen_keeps_writing_to_the_old_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("pod");
    fs::create_dir(&logs).expect("mkdir");
    let path = logs.join("0.log");
    let mut w = CriLogWriter::open(&path).expect("open");
    let moved = dir.path().join("pod-moved");
    fs::rename(&logs, &moved).expect("rename dir");

    let err = w.reopen().expect_err("the directory is gone");
    assert!(matches!(err, LogError::Reopen { .. }), "{err:?}");
    assert!(err.to_string().contains("0.log"), "{err}");
    w.write(Stream::Stdout, b"kept\n", now()).expect("write");
    assert_eq!(
        shape(&moved.join("0.log")),
        vec![rec("stdout", "F", b"kept")]
    );
}

#[test]
fn open_appends_to_existing_content_and_creates_with_mode_0640() {
    let (_dir, path, mut w) = writer();
    let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    // The umask can only take bits away; none beyond 0640 may be present.
    assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    w.write(Stream::Stdout, b"first\n", now()).expect("write");
    drop(w);
    let mut again = CriLogWriter::open(&path).expect("reopen by a new monitor");
    again
        .write(Stream::Stdout, b"second\n", now())
        .expect("write");
    assert_eq!(
        shape(&path),
        vec![rec("stdout", "F", b"first"), rec("stdout", "F", b"second")]
    );
}

#[test]
fn open_error_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing-dir").join("0.log");
    let err = CriLogWriter::open(&path).expect_err("no parent directory");
    assert!(err.to_string().contains("missing-dir/0.log"), "{err}");
}

#[test]
fn a_symlink_planted_at_the_log_or_on_its_way_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious\n").expect("write");
    let logs = dir.path().join("pod-logs");
    std::fs::create_dir_all(logs.join("c")).expect("mkdir");
    std::os::unix::fs::symlink(&victim, logs.join("c/0.log")).expect("symlink");
    std::os::unix::fs::symlink(dir.path(), logs.join("up")).expect("symlink");
    for rel in ["c/0.log", "up/victim"] {
        let err = CriLogWriter::open_beneath(&logs, Path::new(rel)).expect_err(rel);
        assert!(err.to_string().contains(rel), "{err}");
    }
    let err = CriLogWriter::open(&logs.join("c/0.log")).expect_err("the last component");
    assert!(err.to_string().contains("0.log"), "{err}");
    assert_eq!(std::fs::read(&victim).expect("read"), b"precious\n");
    // A real file there is fine, and reopened the same way.
    std::fs::remove_file(logs.join("c/0.log")).expect("rm");
    let mut w = CriLogWriter::open_beneath(&logs, Path::new("c/0.log")).expect("open");
    w.reopen().expect("reopen");
    w.write(Stream::Stdout, b"hi\n", now()).expect("write");
    assert!(std::fs::read_to_string(logs.join("c/0.log"))
        .expect("read")
        .ends_with(" stdout F hi\n"));
}

#[test]
fn write_error_is_reported_and_the_stream_keeps_its_place() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("skipping: /dev/full is not available here");
        return;
    }
    let mut w = CriLogWriter::open(full).expect("open /dev/full");
    let err = w
        .write(Stream::Stdout, b"lost\nkept-", now())
        .expect_err("ENOSPC");
    assert_eq!(err.kind(), ErrorKind::ResourceExhausted, "{err}");
    assert!(err.to_string().contains("stdout"), "{err}");
    // The unterminated tail survived the failed write of the line before it.
    assert_eq!(w.pending[Stream::Stdout.index()], b"kept-");
}

#[test]
fn records_parse_as_rfc3339_nano_utc() {
    let (_dir, path, mut w) = writer();
    w.write(Stream::Stdout, b"a\n", at(1_475_713_029, 0))
        .expect("write");
    w.write(Stream::Stdout, b"b\n", at(1_475_713_029, 1))
        .expect("write");
    let stamps: Vec<_> = records(&path).into_iter().map(|r| r.stamp).collect();
    assert_eq!(
        stamps,
        [
            "2016-10-06T00:17:09.000000000Z",
            "2016-10-06T00:17:09.000000001Z"
        ]
    );
    for stamp in &stamps {
        chrono::DateTime::parse_from_rfc3339(stamp).expect("RFC 3339");
    }
}

#[test]
fn timestamp_edges() {
    let fmt = |t| String::from_utf8(format_timestamp(t).to_vec()).expect("ascii");
    assert_eq!(fmt(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(
        fmt(UNIX_EPOCH - Duration::from_secs(5)),
        "1970-01-01T00:00:00.000000000Z"
    );
    // Leap day, and the last second of a leap year.
    assert_eq!(fmt(at(951_782_400, 123)), "2000-02-29T00:00:00.000000123Z");
    assert_eq!(
        fmt(at(1_735_689_599, 999_999_999)),
        "2024-12-31T23:59:59.999999999Z"
    );
    assert_eq!(
        fmt(at(MAX_SECS + 1_000, 0)),
        "9999-12-31T23:59:59.999999999Z"
    );
}

#[test]
fn timestamp_matches_chrono_across_centuries() {
    // A deterministic spread of instants from 1970 to 9999, including day boundaries.
    let mut secs: u64 = 0;
    while secs <= MAX_SECS {
        for offset in [0, 1, 86_399] {
            let s = (secs + offset).min(MAX_SECS);
            let nanos = (s % 1_000_000_007 % 1_000_000_000) as u32;
            let ours = String::from_utf8(format_timestamp(at(s, nanos)).to_vec()).expect("ascii");
            let theirs = chrono::DateTime::from_timestamp(s as i64, nanos)
                .expect("in range")
                .format("%Y-%m-%dT%H:%M:%S%.9fZ")
                .to_string();
            assert_eq!(ours, theirs, "secs {s}");
        }
        secs += 86_400 * 97 + 3_601;
    }
}
