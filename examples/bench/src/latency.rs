//! Latency samples in microseconds, and their percentiles in milliseconds.

#[derive(Default)]
pub(crate) struct Latencies(Vec<u64>);

impl Latencies {
    pub(crate) fn push_micros(&mut self, micros: u64) {
        self.0.push(micros);
    }

    pub(crate) fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// (p50, p99, max) in milliseconds; zeros when empty.
    pub(crate) fn summary(&mut self) -> (f64, f64, f64) {
        if self.0.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        self.0.sort_unstable();
        let at = |q: f64| {
            let i = ((self.0.len() as f64 * q).ceil() as usize).clamp(1, self.0.len()) - 1;
            self.0[i] as f64 / 1000.0
        };
        (at(0.50), at(0.99), *self.0.last().unwrap() as f64 / 1000.0)
    }
}
