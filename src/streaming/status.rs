//! What goes on the error channel when a session ends, as kubelet writes it. From
//! `v4.channel.k8s.io` on it is a Kubernetes `Status` object in JSON (clients read the exit
//! code from its causes); before that, nothing on success and the message as plain text
//! on failure.

use serde_json::json;

/// The error channel's payload for a session that ended with `outcome`: `Ok(code)` for a
/// process's exit code, `Err(message)` for a failure to run it at all. `None`: write
/// nothing (success under the older protocols).
pub fn encode(outcome: &Result<i32, String>, json: bool) -> Option<Vec<u8>> {
    let status = match outcome {
        Ok(0) => json!({"metadata": {}, "status": "Success"}),
        Ok(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Err(message) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {message}"),
            "reason": "InternalError",
            "details": {"causes": [{"message": message}]},
            "code": 500,
        }),
    };
    if json {
        return serde_json::to_vec(&status).ok();
    }
    match outcome {
        Ok(0) => None,
        _ => status["message"].as_str().map(|m| m.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: Option<Vec<u8>>) -> serde_json::Value {
        serde_json::from_slice(&bytes.expect("a status")).expect("json")
    }

    #[test]
    fn exit_codes_travel_as_kubernetes_status_causes() {
        let ok = parse(encode(&Ok(0), true));
        assert_eq!(ok["status"], "Success");
        let failed = parse(encode(&Ok(3), true));
        assert_eq!(failed["status"], "Failure");
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(failed["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failed["details"]["causes"][0]["message"], "3");
        let internal = parse(encode(&Err("no such program: x".into()), true));
        assert_eq!(internal["reason"], "InternalError");
        assert_eq!(internal["code"], 500);
    }

    #[test]
    fn older_protocols_get_text_and_nothing_on_success() {
        assert_eq!(encode(&Ok(0), false), None);
        let text = String::from_utf8(encode(&Ok(2), false).expect("text")).expect("utf8");
        assert!(
            text.contains("non-zero exit code") && text.contains('2'),
            "{text}"
        );
    }
}
