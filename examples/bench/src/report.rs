//! Results: one JSON line per result on stdout (for scripts), and a table
//! and the target verdicts on stderr (for people).

use serde_json::{Map, Value, json};

/// One result of one scenario.
pub(crate) struct Line {
    scenario: &'static str,
    params: Map<String, Value>,
    metrics: Map<String, Value>,
    baseline: bool,
}

impl Line {
    pub(crate) fn new(scenario: &'static str) -> Self {
        Line {
            scenario,
            params: Map::new(),
            metrics: Map::new(),
            baseline: false,
        }
    }

    pub(crate) fn param(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    pub(crate) fn metric(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metrics.insert(key.into(), value.into());
        self
    }

    /// Marks the line as the raw baseline, not Parlor.
    pub(crate) fn baseline(mut self) -> Self {
        self.baseline = true;
        self
    }

    pub(crate) fn get(&self, key: &str) -> Option<f64> {
        self.metrics.get(key).and_then(Value::as_f64)
    }
}

/// Collects lines, printing each JSON line as it comes and the table at the end.
#[derive(Default)]
pub(crate) struct Report {
    rows: Vec<String>,
    verdicts: Vec<String>,
}

fn show(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 && f.abs() < 10.0 => format!("{f:.2}"),
            Some(f) if f.fract() != 0.0 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pairs(map: &Map<String, Value>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", show(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Report {
    pub(crate) fn emit(&mut self, line: &Line) {
        let mut json = json!({
            "scenario": line.scenario,
            "params": line.params,
            "metrics": line.metrics,
        });
        if line.baseline {
            json["baseline"] = true.into();
        }
        println!("{json}");
        self.rows.push(format!(
            "{:<11} {:<9}| {:<58}| {}",
            line.scenario,
            if line.baseline { "baseline" } else { "" },
            pairs(&line.params),
            pairs(&line.metrics)
        ));
    }

    /// Records whether a target of the issue holds on this run.
    pub(crate) fn target(&mut self, what: &str, got: f64, want: &str, met: bool) {
        let mark = if met { "met" } else { "MISSED" };
        self.verdicts.push(format!(
            "{mark:>6}  {what}: {} (target {want})",
            show(&json!(got))
        ));
    }

    pub(crate) fn finish(self) {
        eprintln!();
        eprintln!("{:<11} {:<9}| {:<58}| metrics", "scenario", "", "params");
        eprintln!("{}", "-".repeat(120));
        for row in &self.rows {
            eprintln!("{row}");
        }
        if !self.verdicts.is_empty() {
            eprintln!();
            eprintln!("targets on this machine:");
            for verdict in &self.verdicts {
                eprintln!("{verdict}");
            }
        }
    }
}
