//! Times as the journal shows them (UTC, without a date crate) and `--confirm-within` durations.

use std::time::Duration;

/// `2026-11-30 10:48:48 UTC` — also a systemd calendar spec (`OnCalendar=`).
pub fn utc(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `20261130-104848-123`: a run id, sorting as time does.
pub fn run_id(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}-{:03}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since_epoch.subsec_millis()
    )
}

/// Whether `id` has the shape of a run id (the only names a runs directory may hold).
pub fn is_run_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 19
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 15 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Howard Hinnant's days-to-civil: (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `90s`, `5min`, `2m`, `1h`, `300` (seconds): the `--confirm-within` window, 10 s to 24 h.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write it like 90s, 5min or 1h"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hour" | "hours" => 3600,
        other => {
            return Err(format!(
                "`{other}` is not a unit of time; use s, min or h (90s, 5min, 1h)"
            ))
        }
    };
    let secs = number.saturating_mul(scale);
    if !(10..=86_400).contains(&secs) {
        return Err(format!(
            "{text} is outside 10s..24h: too short to confirm in, or too long to wait for"
        ));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_and_ids_sort_as_time_does() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_801_219_728), "2027-01-29 10:48:48 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        let early = run_id(Duration::from_millis(1_801_219_728_007));
        let later = run_id(Duration::from_millis(1_801_219_728_120));
        assert_eq!(early, "20270129-104848-007");
        assert!(early < later && is_run_id(&early));
        assert!(!is_run_id("20270129-084848-00x") && !is_run_id("../etc"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("1s").is_err());
        assert!(parse_duration("").is_err());
    }
}
