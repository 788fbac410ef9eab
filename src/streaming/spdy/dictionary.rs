//! The zlib dictionary every SPDY/3 header compression context starts from (SPDY/3
//! section 2.6.10.1). It is protocol data: one wrong byte and no peer can read our
//! headers, nor we theirs. The spec prints it as 1423 hex bytes; it is written here by its
//! structure instead (length-prefixed words, then a run of plain text), and the tests pin
//! its length and Adler-32 to those of the table in the spec and in moby/spdystream's
//! `spdy/dictionary.go`.

/// Header names and common values, each preceded on the wire by its length as a 32-bit
/// big-endian integer, as they would appear in a header block.
const WORDS: [&str; 65] = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// Then, with no lengths: status codes, status lines, dates, content types and cache
/// values run together ("Sept", not "Sep", is what the spec has).
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307",
    "402405406407408409410411412413414415416417",
    "502504505",
    "203 Non-Authoritative Information",
    "204 No Content",
    "301 Moved Permanently",
    "400 Bad Request",
    "401 Unauthorized",
    "403 Forbidden",
    "404 Not Found",
    "500 Internal Server Error",
    "501 Not Implemented",
    "503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,",
    "publicprivatemax-age=gzip,deflate,sdch",
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

const fn dictionary_len() -> usize {
    let mut len = TAIL.len();
    let mut i = 0;
    while i < WORDS.len() {
        len += 4 + WORDS[i].len();
        i += 1;
    }
    len
}

const fn build() -> [u8; dictionary_len()] {
    let mut out = [0u8; dictionary_len()];
    let mut at = 0;
    let mut i = 0;
    while i < WORDS.len() {
        let word = WORDS[i].as_bytes();
        let len = (word.len() as u32).to_be_bytes();
        let mut j = 0;
        while j < 4 {
            out[at] = len[j];
            at += 1;
            j += 1;
        }
        j = 0;
        while j < word.len() {
            out[at] = word[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    let tail = TAIL.as_bytes();
    let mut j = 0;
    while j < tail.len() {
        out[at] = tail[j];
        at += 1;
        j += 1;
    }
    out
}

/// The dictionary, built at compile time.
pub(super) static DICTIONARY: [u8; dictionary_len()] = build();

/// Its Adler-32: the id a zlib stream names its dictionary by (RFC 1950 DICTID).
pub(super) const DICTIONARY_ID: u32 = 0xe3c6_a7c2;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Length and checksum of the 1423-byte table in the SPDY/3 draft, which is the same as
    /// moby/spdystream's `spdy/dictionary.go` (both checked with Python's `zlib.adler32`).
    #[test]
    fn matches_the_spec_table() {
        assert_eq!(DICTIONARY.len(), 1423);
        // zlib computes the Adler-32 when it is handed a dictionary.
        let mut z = flate2::Compress::new(flate2::Compression::default(), true);
        assert_eq!(z.set_dictionary(&DICTIONARY).unwrap(), DICTIONARY_ID);
        assert_eq!(&DICTIONARY[..11], b"\0\0\0\x07options");
        assert_eq!(&DICTIONARY[DICTIONARY.len() - 7..], b",enq=0.");
    }
}
