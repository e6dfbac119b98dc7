//! Turning a run's tally into figures: requests/s, latency percentiles, errors and the
//! distribution of answers, as text for people and as one JSON object for scripts; ratios to
//! earlier results (the floor, the anchor a daemon replaces); process memory from /proc.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runner::Outcome;

/// What was run, for the report's header.
#[derive(Debug, Clone)]
pub struct Meta {
    /// `policy` or `auth`.
    pub command: &'static str,
    pub workload: String,
    pub target: String,
    pub connections: usize,
    pub seed: u64,
    pub warmup: Duration,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// The fastest answer: what a timing attack on failures looks at first.
    #[serde(default)]
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

/// VmRSS and VmHWM of a process, in kB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcMemory {
    pub vm_rss_kb: u64,
    pub vm_hwm_kb: u64,
}

impl std::ops::Add for ProcMemory {
    type Output = ProcMemory;
    fn add(self, o: ProcMemory) -> ProcMemory {
        ProcMemory { vm_rss_kb: self.vm_rss_kb + o.vm_rss_kb, vm_hwm_kb: self.vm_hwm_kb + o.vm_hwm_kb }
    }
}

impl ProcMemory {
    /// Reads `/proc/<pid>/status`.
    ///
    /// # Errors
    /// The process is gone or the file lacks the two fields.
    pub fn read(pid: u32) -> std::io::Result<ProcMemory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        Self::parse(&status).ok_or_else(|| std::io::Error::other(format!("no VmRSS/VmHWM in /proc/{pid}/status")))
    }

    fn parse(status: &str) -> Option<ProcMemory> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        Some(ProcMemory { vm_rss_kb: field("VmRSS:")?, vm_hwm_kb: field("VmHWM:")? })
    }
}

/// Memory of the process named by `--pid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidMemory {
    pub pid: u32,
    #[serde(flatten)]
    pub memory: ProcMemory,
}

/// This run compared with an earlier one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub label: String,
    pub file: String,
    pub requests_per_s: f64,
    pub p99_ms: f64,
    /// This run's requests/s divided by the baseline's (none if the baseline's is 0).
    pub throughput_ratio: Option<f64>,
    /// This run's p99 divided by the baseline's (none if the baseline's is 0).
    pub p99_ratio: Option<f64>,
}

/// One run's results; also the `--json` output and what `--baseline` reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub command: String,
    pub workload: String,
    pub target: String,
    pub connections: usize,
    pub seed: u64,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Answered plus failed.
    pub requests: u64,
    pub answered: u64,
    pub errors: u64,
    /// Answered requests per second.
    pub requests_per_s: f64,
    pub latency_ms: Latency,
    pub answers: BTreeMap<String, u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    #[serde(default)]
    pub first_errors: BTreeMap<String, String>,
    /// The workload's request classes (`new`/`repeat`, `right`/`wrong`), counted over answers.
    #[serde(default)]
    pub mix: BTreeMap<String, u64>,
    /// Latency of each request class of `mix`.
    #[serde(default)]
    pub latency_by_class_ms: BTreeMap<String, Latency>,
    /// The answers each request class of `mix` got.
    #[serde(default)]
    pub answers_by_class: BTreeMap<String, BTreeMap<String, u64>>,
    #[serde(default)]
    pub memory: Option<PidMemory>,
    /// Summed over `--spawn` children, just before they were stopped.
    #[serde(default)]
    pub children_memory: Option<ProcMemory>,
    #[serde(default)]
    pub baselines: Vec<Ratio>,
}

impl Report {
    pub fn new(meta: Meta, outcome: Outcome) -> Report {
        let Outcome { mut tally, elapsed } = outcome;
        tally.latencies_us.sort_unstable();
        let answered = tally.answered();
        let errors = tally.error_count();
        let secs = elapsed.as_secs_f64();
        let strings =
            |m: std::collections::HashMap<&'static str, u64>| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Report {
            tool: format!("postward-bench {}", env!("CARGO_PKG_VERSION")),
            command: meta.command.to_owned(),
            workload: meta.workload,
            target: meta.target,
            connections: meta.connections,
            seed: meta.seed,
            warmup_s: meta.warmup.as_secs_f64(),
            duration_s: secs,
            requests: answered + errors,
            answered,
            errors,
            requests_per_s: if secs > 0.0 { answered as f64 / secs } else { 0.0 },
            latency_ms: latency(&tally.latencies_us),
            answers: tally.answers.into_iter().collect(),
            errors_by_kind: strings(tally.errors),
            first_errors: tally.first_errors.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            mix: strings(tally.mix),
            latency_by_class_ms: tally
                .class_latencies_us
                .into_iter()
                .map(|(class, mut us)| {
                    us.sort_unstable();
                    (class.to_owned(), latency(&us))
                })
                .collect(),
            answers_by_class: tally
                .class_answers
                .into_iter()
                .map(|(class, answers)| (class.to_owned(), answers.into_iter().collect()))
                .collect(),
            memory: None,
            children_memory: tally.children_memory,
            baselines: Vec::new(),
        }
    }

    /// Reads an earlier `--json-out` file.
    ///
    /// # Errors
    /// The file cannot be read or is not a report.
    pub fn load(path: &Path) -> Result<Report, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not a postward-bench JSON report: {e}", path.display()))
    }

    /// Adds the ratio of this run to `base`.
    pub fn compare(&mut self, label: &str, file: &Path, base: &Report) {
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        self.baselines.push(Ratio {
            label: label.to_owned(),
            file: file.display().to_string(),
            requests_per_s: base.requests_per_s,
            p99_ms: base.latency_ms.p99,
            throughput_ratio: ratio(self.requests_per_s, base.requests_per_s),
            p99_ratio: ratio(self.latency_ms.p99, base.latency_ms.p99),
        });
    }

    /// The report for people: a header and one line per subject.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "postward-bench {}: workload {}, {} connection{}, target {}, seed {}",
            self.command,
            self.workload,
            self.connections,
            if self.connections == 1 { "" } else { "s" },
            self.target,
            self.seed
        );
        let _ = writeln!(
            s,
            "result     {:.1} req/s, p99 {:.3} ms, {} errors ({} answered in {:.3} s{})",
            self.requests_per_s,
            self.latency_ms.p99,
            self.errors,
            self.answered,
            self.duration_s,
            if self.warmup_s > 0.0 { format!(" after {:.1} s warm-up", self.warmup_s) } else { String::new() }
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            s,
            "latency    min {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3} ms",
            l.min, l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
        );
        let _ = writeln!(s, "answers    {}", shares(&self.answers, self.answered));
        if !self.mix.is_empty() {
            let _ = writeln!(s, "mix        {}", shares(&self.mix, self.mix.values().sum()));
        }
        for (class, l) in &self.latency_by_class_ms {
            let _ = writeln!(s, "latency    {class}: p50 {:.3}  p99 {:.3}  max {:.3} ms", l.p50, l.p99, l.max);
        }
        for (class, answers) in &self.answers_by_class {
            let _ = writeln!(s, "answers    {class}: {}", shares(answers, answers.values().sum()));
        }
        for (kind, n) in &self.errors_by_kind {
            let first = self.first_errors.get(kind).map_or(String::new(), |m| format!(" (first: {m})"));
            let _ = writeln!(s, "errors     {kind} {n}{first}");
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(
                s,
                "memory     pid {}: VmRSS {} kB, VmHWM {} kB",
                m.pid, m.memory.vm_rss_kb, m.memory.vm_hwm_kb
            );
        }
        if let Some(m) = &self.children_memory {
            let _ = writeln!(s, "children   VmRSS {} kB, VmHWM {} kB (summed)", m.vm_rss_kb, m.vm_hwm_kb);
        }
        let times = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{r:.3}x"));
        for r in &self.baselines {
            let _ = writeln!(
                s,
                "vs {:<7} {} req/s, {} p99 ({}: {:.1} req/s, p99 {:.3} ms)",
                r.label,
                times(r.throughput_ratio),
                times(r.p99_ratio),
                r.file,
                r.requests_per_s,
                r.p99_ms
            );
        }
        s
    }
}

/// `A 10 (50.0%), B 10 (50.0%)`, largest first.
fn shares(counts: &BTreeMap<String, u64>, total: u64) -> String {
    if counts.is_empty() {
        return "(none)".to_owned();
    }
    let mut v: Vec<_> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let pct = |n: u64| {
        if total > 0 { 100.0 * n as f64 / total as f64 } else { 0.0 }
    };
    v.iter().map(|(k, n)| format!("{k} {n} ({:.1}%)", pct(**n))).collect::<Vec<_>>().join(", ")
}

/// Percentiles of sorted microsecond latencies, in milliseconds.
fn latency(sorted_us: &[u32]) -> Latency {
    let ms = |us: u32| f64::from(us) / 1000.0;
    let sum: u64 = sorted_us.iter().map(|&v| u64::from(v)).sum();
    Latency {
        min: ms(sorted_us.first().copied().unwrap_or(0)),
        p50: ms(percentile(sorted_us, 50.0)),
        p90: ms(percentile(sorted_us, 90.0)),
        p99: ms(percentile(sorted_us, 99.0)),
        p99_9: ms(percentile(sorted_us, 99.9)),
        max: ms(sorted_us.last().copied().unwrap_or(0)),
        mean: if sorted_us.is_empty() { 0.0 } else { sum as f64 / sorted_us.len() as f64 / 1000.0 },
    }
}

/// Nearest-rank percentile of a sorted slice: the smallest value with at least `p` percent
/// of the values at or below it. 0 for an empty slice.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    // The epsilon keeps binary fractions from rounding up: 0.999 * 1000 is 999.0000000000001.
    let rank = ((p / 100.0) * n as f64 - 1e-6).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<u32> = (1..=100).collect();
        let cases: &[(&[u32], f64, u32)] = &[
            (&[], 50.0, 0),
            (&[7], 50.0, 7),
            (&[7], 99.9, 7),
            (&hundred, 50.0, 50),
            (&hundred, 90.0, 90),
            (&hundred, 99.0, 99),
            (&hundred, 99.9, 100),
            (&hundred, 100.0, 100),
            (&hundred, 0.0, 1),
            (&[1, 2, 3, 4], 50.0, 2),
            (&[1, 2, 3, 4], 51.0, 3),
        ];
        for (data, p, want) in cases {
            assert_eq!(percentile(data, *p), *want, "p{p} of {} values", data.len());
        }
        let thousand: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&thousand, 99.9), 999);
        let l = latency(&hundred);
        assert_eq!((l.p50, l.p99, l.max), (0.05, 0.099, 0.1));
        assert!((l.mean - 0.0505).abs() < 1e-9);
    }

    #[test]
    fn proc_status() {
        let status = "Name:\tx\nVmHWM:\t    6000 kB\nVmRSS:\t    5120 kB\nThreads:\t2\n";
        assert_eq!(ProcMemory::parse(status), Some(ProcMemory { vm_rss_kb: 5120, vm_hwm_kb: 6000 }));
        assert_eq!(ProcMemory::parse("Name:\tkthreadd\n"), None);
        let me = ProcMemory::read(std::process::id()).unwrap();
        assert!(me.vm_rss_kb > 0 && me.vm_hwm_kb >= me.vm_rss_kb);
    }

    #[test]
    fn json_round_trip_and_ratios() {
        let meta = Meta {
            command: "policy",
            workload: "trivial".into(),
            target: "unix:/x".into(),
            connections: 2,
            seed: 1,
            warmup: Duration::ZERO,
        };
        let mut tally = crate::runner::Tally::default();
        tally.latencies_us = vec![300, 100, 200, 400];
        tally.answers.insert("DUNNO".into(), 4);
        tally.class_latencies_us.insert("new", vec![400, 300]);
        tally.class_latencies_us.insert("repeat", vec![200, 100]);
        tally.class_answers.insert("new", [("DEFER_IF_PERMIT".to_owned(), 2)].into_iter().collect());
        let mut r = Report::new(meta, Outcome { tally, elapsed: Duration::from_secs(2) });
        assert_eq!(r.answers_by_class["new"]["DEFER_IF_PERMIT"], 2);
        assert!(r.text().contains("answers    new: DEFER_IF_PERMIT"), "{}", r.text());
        assert_eq!((r.answered, r.requests_per_s, r.latency_ms.p50), (4, 2.0, 0.2));
        assert_eq!((r.latency_by_class_ms["new"].p50, r.latency_by_class_ms["new"].max), (0.3, 0.4));
        assert_eq!(r.latency_by_class_ms["repeat"].p99, 0.2);
        let base = r.clone();
        r.requests_per_s = 1.0;
        r.compare("floor", Path::new("floor.json"), &base);
        assert_eq!(r.baselines[0].throughput_ratio, Some(0.5));
        assert_eq!(r.baselines[0].p99_ratio, Some(1.0));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
        let text = r.text();
        assert!(text.contains("answers    DUNNO 4 (100.0%)"), "{text}");
        assert!(text.contains("vs floor   0.500x req/s"), "{text}");
        assert!(text.contains("latency    new: p50 0.300  p99 0.400  max 0.400 ms"), "{text}");
    }
}
