//! Mesos's JSON where pbjson's generated mapping does not fit:
//! - `FileInfo` and READ_FILE's answer: sizes and times as JSON numbers (proto3's mapping,
//!   which pbjson follows, would make 64-bit integers strings), `data` as base64
//!   (protobuf's JSON mapping of `bytes`, which Mesos uses too);
//! - `Volume.Source.SandboxPath.Type`, whose value `SELF` prost names `Self_` and pbjson's
//!   generated code then cannot name at all.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::wire::v1::agent::response::ReadFile;
use super::wire::v1::volume::source::sandbox_path::Type as SandboxPathType;
use super::wire::v1::{FileInfo, TimeInfo};

impl Serialize for SandboxPathType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str_name())
    }
}

impl<'de> Deserialize<'de> for SandboxPathType {
    /// The name, or (as protobuf's JSON parsers accept) the number.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NameOrNumber {
            Name(String),
            Number(i32),
        }
        let bad = |v: &dyn std::fmt::Display| {
            serde::de::Error::custom(format!("unknown SandboxPath type {v}"))
        };
        match NameOrNumber::deserialize(d)? {
            NameOrNumber::Name(n) => SandboxPathType::from_str_name(&n).ok_or_else(|| bad(&n)),
            NameOrNumber::Number(n) => SandboxPathType::try_from(n).map_err(|_| bad(&n)),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct TimeJson {
    nanoseconds: i64,
}

#[derive(Serialize, Deserialize)]
struct FileInfoJson {
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nlink: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtime: Option<TimeJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gid: Option<String>,
}

impl Serialize for FileInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        FileInfoJson {
            path: self.path.clone(),
            nlink: self.nlink,
            size: self.size,
            mtime: self.mtime.as_ref().map(|t| TimeJson {
                nanoseconds: t.nanoseconds,
            }),
            mode: self.mode,
            uid: self.uid.clone(),
            gid: self.gid.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for FileInfo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = FileInfoJson::deserialize(d)?;
        Ok(FileInfo {
            path: j.path,
            nlink: j.nlink,
            size: j.size,
            mtime: j.mtime.map(|t| TimeInfo {
                nanoseconds: t.nanoseconds,
            }),
            mode: j.mode,
            uid: j.uid,
            gid: j.gid,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct ReadFileJson {
    size: u64,
    data: String,
}

impl Serialize for ReadFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ReadFileJson {
            size: self.size,
            data: base64::engine::general_purpose::STANDARD.encode(&self.data),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ReadFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = ReadFileJson::deserialize(d)?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(j.data.as_bytes())
            .map_err(serde::de::Error::custom)?;
        Ok(ReadFile { size: j.size, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_path_types_by_name_or_number() {
        let t: SandboxPathType = serde_json::from_str(r#""SELF""#).expect("name");
        assert_eq!(t, SandboxPathType::Self_);
        let t: SandboxPathType = serde_json::from_str("2").expect("number");
        assert_eq!(t, SandboxPathType::Parent);
        assert!(serde_json::from_str::<SandboxPathType>(r#""OTHER""#).is_err());
        assert_eq!(
            serde_json::to_string(&SandboxPathType::Self_).expect("json"),
            r#""SELF""#
        );
    }

    #[test]
    fn numbers_stay_numbers_and_bytes_are_base64() {
        let info = FileInfo {
            path: "/containers/c/stdout".into(),
            nlink: Some(1),
            size: Some(1 << 40),
            mtime: Some(TimeInfo {
                nanoseconds: 1_700_000_000_000_000_000,
            }),
            mode: Some(0o100640),
            uid: Some("nobody".into()),
            gid: Some("65534".into()),
        };
        let json = serde_json::to_value(&info).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"path": "/containers/c/stdout", "nlink": 1, "size": 1u64 << 40,
                "mtime": {"nanoseconds": 1_700_000_000_000_000_000i64}, "mode": 0o100640,
                "uid": "nobody", "gid": "65534"})
        );
        assert_eq!(
            serde_json::from_value::<FileInfo>(json).expect("back"),
            info
        );
        let read = ReadFile {
            size: 11,
            data: b"hello\0".to_vec(),
        };
        let json = serde_json::to_value(&read).expect("json");
        assert_eq!(json, serde_json::json!({"size": 11, "data": "aGVsbG8A"}));
        assert_eq!(
            serde_json::from_value::<ReadFile>(json).expect("back"),
            read
        );
    }
}
