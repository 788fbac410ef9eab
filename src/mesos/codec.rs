//! Content negotiation on `POST /api/v1`, as the Mesos agent does it: the body is JSON or
//! protobuf (`Content-Type`), the answer is what `Accept` allows (JSON first; `*/*` or no
//! header: JSON). Each refusal has its status: no content type 400, another type 415, an
//! `Accept` that allows neither 406.

use http::StatusCode;

pub const JSON: &str = "application/json";
pub const PROTOBUF: &str = "application/x-protobuf";
/// The framing of streaming calls' bodies (`recordio`); what each record is comes in
/// `Message-Content-Type` / `Message-Accept`.
pub const RECORDIO: &str = "application/recordio";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Protobuf,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON,
            Format::Protobuf => PROTOBUF,
        }
    }
}

/// A refusal: the status and the message the body carries.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub StatusCode, pub String);

/// The media type of a header value, without parameters, lower-case.
pub(super) fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

pub fn request_format(content_type: Option<&str>) -> Result<Format, Refused> {
    let Some(value) = content_type else {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present".into(),
        ));
    };
    match media_type(value).as_str() {
        JSON => Ok(Format::Json),
        PROTOBUF => Ok(Format::Protobuf),
        other => Err(Refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Expecting 'Content-Type' of {JSON} or {PROTOBUF}, not {other:?}"),
        )),
    }
}

/// What `Accept` allows: JSON if it may (also for `*/*`, `application/*` and no header),
/// else protobuf; neither: 406. Media ranges with `q=0` are refusals, as HTTP says.
pub fn response_format(accept: Option<&str>) -> Result<Format, Refused> {
    let allows = |t: &str| accepts(accept, t);
    if allows(JSON) {
        Ok(Format::Json)
    } else if allows(PROTOBUF) {
        Ok(Format::Protobuf)
    } else {
        Err(Refused(
            StatusCode::NOT_ACCEPTABLE,
            format!("Expecting 'Accept' to allow {JSON} or {PROTOBUF}"),
        ))
    }
}

/// Whether an `Accept`-like header allows the media type `t` (no header: anything, as
/// libprocess's `acceptsMediaType` says).
pub fn accepts(header: Option<&str>, t: &str) -> bool {
    let Some(header) = header.filter(|a| !a.trim().is_empty()) else {
        return true;
    };
    header
        .split(',')
        .filter(|range| {
            !range
                .split(';')
                .skip(1)
                .any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"))
        })
        .map(media_type)
        .any(|a| a == t || a == "*/*" || a == "application/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_or_protobuf() {
        assert_eq!(
            request_format(Some("application/json; charset=utf-8")),
            Ok(Format::Json)
        );
        assert_eq!(
            request_format(Some("application/x-protobuf")),
            Ok(Format::Protobuf)
        );
        assert_eq!(
            request_format(None).map_err(|r| r.0),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            request_format(Some("text/plain")).map_err(|r| r.0),
            Err(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
    }

    #[test]
    fn accept_prefers_json_and_refuses_what_it_cannot_give() {
        assert_eq!(response_format(None), Ok(Format::Json));
        assert_eq!(response_format(Some("*/*")), Ok(Format::Json));
        assert_eq!(
            response_format(Some("application/x-protobuf, application/json")),
            Ok(Format::Json)
        );
        assert_eq!(
            response_format(Some("application/x-protobuf")),
            Ok(Format::Protobuf)
        );
        assert_eq!(
            response_format(Some("application/json;q=0, application/x-protobuf")),
            Ok(Format::Protobuf)
        );
        assert_eq!(
            response_format(Some("text/html")).map_err(|r| r.0),
            Err(StatusCode::NOT_ACCEPTABLE)
        );
    }
}
