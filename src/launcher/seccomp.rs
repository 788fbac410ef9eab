//! A compiled seccomp filter as the launch spec carries it. The daemon compiles the
//! container's profile (`isolators::linux::seccomp`, with libseccomp) when the container
//! is created; the launcher and `ucr nsexec` only load the bytes (`sys::seccomp`), so
//! neither compiles anything between fork and exec.

use serde::{Deserialize, Serialize};

use super::setup::{step, SetupError};
use crate::sys::seccomp::Program;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeccompFilter {
    /// Classic BPF: `struct sock_filter`s, 8 bytes each in the host's byte order; base64
    /// in the JSON (the default profile, with x86 and x32 beside x86_64, is about 1000
    /// instructions: 11 KB of it).
    #[serde(with = "base64_bytes")]
    pub program: Vec<u8>,
    /// `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2) (a profile's `flags`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl SeccompFilter {
    /// Decoded and checked, ready for [`load`].
    pub(crate) fn program(&self) -> Result<Program, SetupError> {
        Program::from_bytes(&self.program).map_err(step("decode seccomp filter", ""))
    }
}

/// Loads a prepared filter into the calling process.
pub(crate) fn load(program: &Program, flags: u32) -> Result<(), SetupError> {
    program.load(flags).map_err(step(
        "load seccomp filter",
        format!("({} instructions)", program.len()),
    ))
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_travels_as_base64_and_flags_only_when_set() {
        let f = SeccompFilter {
            program: vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f],
            flags: 0,
        };
        let json = serde_json::to_value(&f).expect("serialize");
        assert_eq!(json, serde_json::json!({"program": "BgAAAAAA/38="}));
        assert_eq!(
            serde_json::from_value::<SeccompFilter>(json).expect("parse"),
            f
        );
        let e = serde_json::from_value::<SeccompFilter>(serde_json::json!({"program": "%%"}))
            .expect_err("not base64");
        assert!(e.to_string().contains("Invalid"), "{e}");
    }
}
