//! Durations in configuration files: `"300s"`, `"5m"`, `"2d"`, `"250ms"`, or a bare integer
//! number of seconds, as Postfix writes its time parameters.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration read from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    pub const fn secs(s: u64) -> ConfigDuration {
        ConfigDuration(Duration::from_secs(s))
    }

    pub const fn millis(ms: u64) -> ConfigDuration {
        ConfigDuration(Duration::from_millis(ms))
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

/// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h`, `d` or `w`; a bare number is seconds.
///
/// # Errors
/// A message naming the text that was not understood.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("invalid duration {text:?} (expected e.g. \"300s\", \"5m\", \"2d\", \"250ms\")");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = |mult: u64| n.checked_mul(mult).map(Duration::from_secs).ok_or_else(bad);
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        "w" => secs(7 * 86_400),
        _ => Err(bad()),
    }
}

/// Renders a duration in the largest unit that divides it, the inverse of [`parse`].
pub fn render(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    for (unit, size) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s != 0 && s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(self.0))
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&render(self.0))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"300s\" or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigDuration, E> {
                parse(v).map(ConfigDuration).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfigDuration, E> {
                u64::try_from(v).map(ConfigDuration::secs).map_err(|_| E::custom(format!("negative duration {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigDuration, E> {
                Ok(ConfigDuration::secs(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let cases = [
            ("300", 300_000),
            ("300s", 300_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("2d", 172_800_000),
            ("1w", 604_800_000),
            ("250ms", 250),
            (" 10s ", 10_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse(text).unwrap(), Duration::from_millis(ms), "{text}");
        }
        for bad in ["", "s", "5x", "-1s", "1.5s", "99999999999999999999w"] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(render(Duration::from_secs(300)), "5m");
        assert_eq!(render(Duration::from_secs(172_800)), "2d");
        assert_eq!(render(Duration::from_millis(1500)), "1500ms");
        assert_eq!(render(Duration::from_secs(0)), "0s");
        assert_eq!(render(Duration::from_secs(61)), "61s");
    }
}
