//! The HTTP side of the streaming calls: Mesos's media-type rules for them, the
//! RecordIO response body, and reading a RecordIO request body record by record.
//!
//! Negotiation follows the agent's `api()` (`src/slave/http.cpp`):
//! - `Content-Type` is JSON, protobuf or `application/recordio` (else 415; none: 400);
//!   with RecordIO, `Message-Content-Type` says what each record is (none: 400, another:
//!   415); without it, that header must be absent (415);
//! - `Accept` allows JSON, else protobuf, else RecordIO (else 406); with RecordIO,
//!   `Message-Accept` chooses the records' encoding (JSON first; absent: JSON; neither:
//!   406); without it, that header must be absent (406);
//! - only ATTACH_CONTAINER_INPUT may have a RecordIO body (415 otherwise, and 415 for it
//!   without one); only LAUNCH_NESTED_CONTAINER_SESSION and ATTACH_CONTAINER_OUTPUT may
//!   answer in RecordIO (406 otherwise).
//!
//! Those two answer with RecordIO-framed `ProcessIO` records whatever `Accept` chose,
//! as Mesos does: with `Accept: application/recordio` the answer's `Content-Type` is that
//! and `Message-Content-Type` names the records' encoding; with the older `Accept:
//! application/json` (or protobuf) the `Content-Type` is the records' encoding.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use prost::Message;
use tokio::sync::mpsc;

use super::codec::{self, Format, Refused, JSON, PROTOBUF, RECORDIO};
use super::recordio;
use super::wire::v1::agent::{call, process_io, Call, ProcessIo};
use super::wire::v1::DurationInfo;

pub const MESSAGE_CONTENT_TYPE: &str = "message-content-type";
pub const MESSAGE_ACCEPT: &str = "message-accept";

/// Every answer's body: whole, or streamed record by record.
pub type Body = BoxBody<Bytes, Infallible>;

/// How often an idle output stream gets a heartbeat record: Mesos's
/// `--http_heartbeat_interval` default. Writing one is also how a client that went away
/// without closing its socket is noticed.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// Records queued for one output stream before its writer waits for the client.
pub const QUEUE: usize = 32;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// What the headers ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Media {
    /// The body's encoding, or with `streamed_input` each record's.
    pub input: Format,
    pub streamed_input: bool,
    /// The answer's encoding, or with `streamed_output` each record's.
    pub output: Format,
    pub streamed_output: bool,
}

fn format_of(value: &str) -> Option<Format> {
    match codec::media_type(value).as_str() {
        JSON => Some(Format::Json),
        PROTOBUF => Some(Format::Protobuf),
        _ => None,
    }
}

/// Mesos's header rules (see the module doc), before the body is read.
pub fn negotiate(headers: &HeaderMap) -> Result<Media, Refused> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let content = get(header::CONTENT_TYPE.as_str()).ok_or_else(|| {
        Refused(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present".into(),
        )
    })?;
    let message_content = get(MESSAGE_CONTENT_TYPE);
    let streamed_input = codec::media_type(content) == RECORDIO;
    let input = if streamed_input {
        let value = message_content.ok_or_else(|| {
            Refused(
                StatusCode::BAD_REQUEST,
                "Expecting 'Message-Content-Type' to be set for streaming requests".into(),
            )
        })?;
        format_of(value).ok_or_else(|| {
            Refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Expecting 'Message-Content-Type' of {JSON} or {PROTOBUF}, not {value:?}"),
            )
        })?
    } else {
        let input = format_of(content).ok_or_else(|| {
            Refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Expecting 'Content-Type' of {JSON} or {PROTOBUF} or {RECORDIO}, not {content:?}"
                ),
            )
        })?;
        if message_content.is_some() {
            return Err(Refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expecting 'Message-Content-Type' to be not set for non-streaming requests".into(),
            ));
        }
        input
    };
    let accept = get(header::ACCEPT.as_str());
    let message_accept = get(MESSAGE_ACCEPT);
    let (output, streamed_output) = if codec::accepts(accept, JSON) {
        (Format::Json, false)
    } else if codec::accepts(accept, PROTOBUF) {
        (Format::Protobuf, false)
    } else if codec::accepts(accept, RECORDIO) {
        let format = if codec::accepts(message_accept, JSON) {
            Format::Json
        } else if codec::accepts(message_accept, PROTOBUF) {
            Format::Protobuf
        } else {
            return Err(Refused(
                StatusCode::NOT_ACCEPTABLE,
                format!("Expecting 'Message-Accept' to allow {JSON} or {PROTOBUF}"),
            ));
        };
        (format, true)
    } else {
        return Err(Refused(
            StatusCode::NOT_ACCEPTABLE,
            format!("Expecting 'Accept' to allow {JSON} or {PROTOBUF} or {RECORDIO}"),
        ));
    };
    if !streamed_output && message_accept.is_some() {
        return Err(Refused(
            StatusCode::NOT_ACCEPTABLE,
            "Expecting 'Message-Accept' to be not set for non-streaming responses".into(),
        ));
    }
    Ok(Media {
        input,
        streamed_input,
        output,
        streamed_output,
    })
}

/// The call-type rules for streamed bodies and answers, once the call is known.
pub fn check_call(media: &Media, t: call::Type) -> Result<(), Refused> {
    use call::Type;
    let name = t.as_str_name();
    if media.streamed_input != (t == Type::AttachContainerInput) {
        return Err(Refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            if media.streamed_input {
                format!("Streaming 'Content-Type' {RECORDIO} is not supported for {name} call")
            } else {
                format!("Expecting 'Content-Type' to be {RECORDIO} for {name} call")
            },
        ));
    }
    if media.streamed_output
        && !matches!(
            t,
            Type::AttachContainerOutput | Type::LaunchNestedContainerSession
        )
    {
        return Err(Refused(
            StatusCode::NOT_ACCEPTABLE,
            format!("Streaming response is not supported for {name} call"),
        ));
    }
    Ok(())
}

pub fn decode_call(format: Format, bytes: &[u8]) -> Result<Call, String> {
    match format {
        Format::Json => serde_json::from_slice::<Call>(bytes).map_err(|e| e.to_string()),
        Format::Protobuf => Call::decode(bytes).map_err(|e| e.to_string()),
    }
}

/// One `ProcessIO` as a RecordIO record in `format`.
pub fn record(format: Format, io: &ProcessIo) -> Bytes {
    let bytes = match format {
        // Serializing generated types to JSON cannot fail (no maps with non-string keys).
        Format::Json => serde_json::to_vec(io).unwrap_or_default(),
        Format::Protobuf => io.encode_to_vec(),
    };
    recordio::encode(&bytes)
}

pub fn data(stream: process_io::data::Type, bytes: Bytes) -> ProcessIo {
    ProcessIo {
        r#type: Some(process_io::Type::Data as i32),
        data: Some(process_io::Data {
            r#type: Some(stream as i32),
            data: Some(bytes.to_vec()),
        }),
        control: None,
    }
}

pub fn heartbeat() -> ProcessIo {
    ProcessIo {
        r#type: Some(process_io::Type::Control as i32),
        data: None,
        control: Some(process_io::Control {
            r#type: Some(process_io::control::Type::Heartbeat as i32),
            tty_info: None,
            heartbeat: Some(process_io::control::Heartbeat {
                interval: Some(DurationInfo {
                    nanoseconds: HEARTBEAT.as_nanos() as i64,
                }),
            }),
        }),
    }
}

/// A 200 whose body is what is sent on `records` (already framed), until it closes.
/// The receiver is dropped when the client goes away, which the sender sees.
pub fn streaming_response(media: &Media, records: mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = tokio_stream::wrappers::ReceiverStream::new(records)
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    let message = HeaderValue::from_static(media.output.content_type());
    let headers = resp.headers_mut();
    if media.streamed_output {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(RECORDIO));
        headers.insert(MESSAGE_CONTENT_TYPE, message);
    } else {
        headers.insert(header::CONTENT_TYPE, message);
    }
    resp
}

/// Reads a RecordIO request body one decoded `Call` at a time.
pub struct CallReader {
    body: Incoming,
    decoder: recordio::Decoder,
    format: Format,
    done: bool,
}

impl CallReader {
    pub fn new(body: Incoming, format: Format) -> Self {
        Self {
            body,
            decoder: recordio::Decoder::new(),
            format,
            done: false,
        }
    }

    /// The next call; `Ok(None)` at a clean end of the body. Errors are the client's:
    /// a malformed record or call, or a body cut inside a record.
    pub async fn next(&mut self) -> Result<Option<Call>, String> {
        loop {
            if let Some(record) = self.decoder.next_record().map_err(|e| e.to_string())? {
                return decode_call(self.format, &record)
                    .map(Some)
                    .map_err(|e| format!("Failed to parse a record into Call: {e}"));
            }
            if self.done {
                self.decoder.finish().map_err(|e| e.to_string())?;
                return Ok(None);
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.feed(&data);
                    }
                }
                Some(Err(e)) => return Err(format!("Failed to read the request body: {e}")),
                None => self.done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn status(pairs: &[(&str, &str)]) -> u16 {
        match negotiate(&headers(pairs)) {
            Ok(_) => 200,
            Err(Refused(s, _)) => s.as_u16(),
        }
    }

    #[test]
    fn streaming_headers_follow_the_agents_rules() {
        let ok = negotiate(&headers(&[
            ("content-type", "application/json"),
            ("accept", "application/recordio"),
            ("message-accept", "application/x-protobuf"),
        ]))
        .expect("ok");
        assert!(ok.streamed_output && !ok.streamed_input);
        assert_eq!(ok.output, Format::Protobuf);
        // JSON is preferred, and an absent Message-Accept allows it.
        let ok = negotiate(&headers(&[
            ("content-type", "application/recordio"),
            ("message-content-type", "application/x-protobuf"),
            ("accept", "application/recordio"),
        ]))
        .expect("ok");
        assert_eq!((ok.input, ok.output), (Format::Protobuf, Format::Json));
        assert!(ok.streamed_input && ok.streamed_output);
        assert_eq!(status(&[("content-type", "application/recordio")]), 400);
        assert_eq!(
            status(&[
                ("content-type", "application/recordio"),
                ("message-content-type", "text/plain")
            ]),
            415
        );
        assert_eq!(
            status(&[
                ("content-type", "application/json"),
                ("message-content-type", "application/json")
            ]),
            415
        );
        assert_eq!(
            status(&[
                ("content-type", "application/json"),
                ("accept", "application/recordio"),
                ("message-accept", "text/plain")
            ]),
            406
        );
        assert_eq!(
            status(&[
                ("content-type", "application/json"),
                ("message-accept", "application/json")
            ]),
            406
        );
        assert_eq!(status(&[("content-type", "text/plain")]), 415);
        assert_eq!(
            status(&[
                ("content-type", "application/json"),
                ("accept", "text/html")
            ]),
            406
        );
    }

    #[test]
    fn only_the_streaming_calls_stream() {
        use call::Type;
        let media = |si, so| Media {
            input: Format::Json,
            streamed_input: si,
            output: Format::Json,
            streamed_output: so,
        };
        let code = |m: Media, t| check_call(&m, t).map_err(|r| r.0.as_u16());
        assert_eq!(code(media(true, false), Type::AttachContainerInput), Ok(()));
        assert_eq!(
            code(media(false, false), Type::AttachContainerInput),
            Err(415)
        );
        assert_eq!(code(media(true, false), Type::GetHealth), Err(415));
        assert_eq!(code(media(false, true), Type::GetHealth), Err(406));
        assert_eq!(
            code(media(false, true), Type::LaunchNestedContainerSession),
            Ok(())
        );
        assert_eq!(
            code(media(false, true), Type::AttachContainerOutput),
            Ok(())
        );
        assert_eq!(
            code(media(false, false), Type::AttachContainerOutput),
            Ok(())
        );
    }

    #[test]
    fn process_io_records_in_both_encodings() {
        let io = data(process_io::data::Type::Stdout, Bytes::from_static(b"hi\n"));
        let json = record(Format::Json, &io);
        let mut d = recordio::Decoder::new();
        d.feed(&json);
        let r = d.next_record().expect("ok").expect("a record");
        let v: serde_json::Value = serde_json::from_slice(&r).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"type": "DATA", "data": {"type": "STDOUT", "data": "aGkK"}})
        );
        let proto = record(Format::Protobuf, &io);
        let mut d = recordio::Decoder::new();
        d.feed(&proto);
        let r = d.next_record().expect("ok").expect("a record");
        assert_eq!(ProcessIo::decode(r).expect("protobuf"), io);
    }
}
