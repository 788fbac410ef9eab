//! Pod traffic shaping from the `kubernetes.io/{ingress,egress}-bandwidth` annotations,
//! read as kubelet reads them: Kubernetes quantities in bits per second, refused below
//! 1k or above 1P. The burst is not configurable through annotations; like containerd
//! we pass `u32::MAX` bits, i.e. "shape the rate, do not limit bursts further".

use std::collections::BTreeMap;

use super::error::CniError;
use super::types::Bandwidth;

pub const INGRESS_ANNOTATION: &str = "kubernetes.io/ingress-bandwidth";
pub const EGRESS_ANNOTATION: &str = "kubernetes.io/egress-bandwidth";

/// The burst sent along with any rate (containerd's choice too).
pub const DEFAULT_BURST: u64 = u32::MAX as u64;

const MIN_RATE: u128 = 1_000;
const MAX_RATE: u128 = 1_000_000_000_000_000;

/// `None` when neither annotation is present.
pub fn bandwidth_from_annotations(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<Bandwidth>, CniError> {
    let rate = |key: &str| -> Result<Option<u64>, CniError> {
        let Some(value) = annotations.get(key) else {
            return Ok(None);
        };
        let invalid = |reason: String| CniError::InvalidBandwidth {
            annotation: key.to_owned(),
            value: value.clone(),
            reason,
        };
        let bits = parse_quantity(value).map_err(invalid)?;
        if bits < MIN_RATE {
            return Err(invalid("unreasonably small (< 1kbit)".into()));
        }
        if bits > MAX_RATE {
            return Err(invalid("unreasonably large (> 1Pbit)".into()));
        }
        // Bounded by MAX_RATE above.
        Ok(Some(u64::try_from(bits).unwrap_or(u64::MAX)))
    };
    let ingress = rate(INGRESS_ANNOTATION)?;
    let egress = rate(EGRESS_ANNOTATION)?;
    if ingress.is_none() && egress.is_none() {
        return Ok(None);
    }
    let burst = |r: Option<u64>| if r.is_some() { DEFAULT_BURST } else { 0 };
    Ok(Some(Bandwidth {
        ingress_rate: ingress.unwrap_or(0),
        ingress_burst: burst(ingress),
        egress_rate: egress.unwrap_or(0),
        egress_burst: burst(egress),
    }))
}

/// A Kubernetes quantity (`10M`, `1Gi`, `100k`, `1.5e6`, `500m`) rounded up to an integer
/// as `Quantity.Value()` does. Negative values come back as 0 (they are "too small").
pub fn parse_quantity(text: &str) -> Result<u128, String> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let number_len = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') || number.len() > 30 {
        return Err("not a Kubernetes quantity".into());
    }
    // value = digits / 10^frac_len * multiplier
    let digits: u128 = format!("{whole}{frac}")
        .parse()
        .map_err(|_| "not a Kubernetes quantity".to_owned())?;
    let mut exp10 = -i32::try_from(frac.len()).map_err(|_| "too many digits".to_owned())?;
    let mut factor: u128 = 1;
    match suffix {
        "" => {}
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = "KMGTPE".find(&suffix[..1]).unwrap_or(0) + 1;
            factor = 1u128 << (10 * power);
        }
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        s if s.starts_with(['e', 'E']) => {
            let e: i32 = s[1..].parse().map_err(|_| format!("bad exponent {s:?}"))?;
            if !(-40..=40).contains(&e) {
                return Err(format!("exponent {e} out of range"));
            }
            exp10 += e;
        }
        s => return Err(format!("unknown suffix {s:?}")),
    }
    if negative || digits == 0 {
        return Ok(0);
    }
    let too_large = || "too large".to_owned();
    let scaled = digits.checked_mul(factor).ok_or_else(too_large)?;
    if exp10 >= 0 {
        let pow = 10u128
            .checked_pow(exp10.unsigned_abs())
            .ok_or_else(too_large)?;
        scaled.checked_mul(pow).ok_or_else(too_large)
    } else {
        let Some(pow) = 10u128.checked_pow(exp10.unsigned_abs()) else {
            // Smaller than 1 but positive: rounds up to 1.
            return Ok(1);
        };
        Ok(scaled.div_ceil(pow))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_as_kubernetes_does() {
        for (text, want) in [
            ("100k", 100_000),
            ("10M", 10_000_000),
            ("1Gi", 1 << 30),
            ("1Ki", 1024),
            ("2.5M", 2_500_000),
            ("1.5e6", 1_500_000),
            ("1E3", 1_000),
            ("1E", 1_000_000_000_000_000_000),
            ("1500m", 2),
            ("0.1", 1),
            (".5k", 500),
            ("+3", 3),
            ("-5M", 0),
            ("1000", 1000),
        ] {
            assert_eq!(parse_quantity(text), Ok(want), "{text}");
        }
        for bad in ["", "M", "1.2.3", "10 M", "1kb", "ten", "1e", "1e99", "."] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
    }

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn annotations_become_rates_with_a_burst() {
        assert_eq!(
            bandwidth_from_annotations(&annotations(&[("a", "b")])).unwrap(),
            None
        );
        let b = bandwidth_from_annotations(&annotations(&[(INGRESS_ANNOTATION, "10M")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            b,
            Bandwidth {
                ingress_rate: 10_000_000,
                ingress_burst: DEFAULT_BURST,
                egress_rate: 0,
                egress_burst: 0
            }
        );
        let b = bandwidth_from_annotations(&annotations(&[
            (INGRESS_ANNOTATION, "1Gi"),
            (EGRESS_ANNOTATION, "100k"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((b.ingress_rate, b.egress_rate), (1 << 30, 100_000));
        assert_eq!(b.egress_burst, DEFAULT_BURST);
    }

    #[test]
    fn invalid_annotations_name_the_value() {
        use crate::error::{ErrorKind, Kind};
        for (value, reason) in [
            ("fast", "not a Kubernetes quantity"),
            ("999", "unreasonably small"),
            ("2P", "unreasonably large"),
        ] {
            let err = bandwidth_from_annotations(&annotations(&[(EGRESS_ANNOTATION, value)]))
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            let text = err.to_string();
            assert!(text.contains(&format!("{value:?}")), "{text}");
            assert!(
                text.contains(EGRESS_ANNOTATION) && text.contains(reason),
                "{text}"
            );
        }
    }
}
