//! `/metrics`: Prometheus text exposition of the engine's and transport's
//! counters.

use std::fmt::Write;

use parlor_engine::{Engine, HistogramSnapshot, WebhookStats};
use parlor_graphql::GraphqlTransport;
use parlor_redis::RedisBus;
use parlor_ws::WsTransport;

pub(crate) fn render(
    engine: &Engine,
    transport: &WsTransport,
    graphql: &GraphqlTransport,
    bus: Option<&RedisBus>,
) -> String {
    let s = parlor_engine::ChatEngine::stats(engine);
    let mut out = String::with_capacity(4096);
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge(
        "parlor_connections",
        "Open raw WebSocket connections.",
        transport.connections(),
    );
    gauge(
        "parlor_graphql_connections",
        "Open GraphQL WebSocket connections.",
        graphql.connections(),
    );
    gauge(
        "parlor_pending_rooms",
        "Rooms waiting for their creator's commit.",
        s.pending_rooms,
    );
    gauge(
        "parlor_rooms_loaded",
        "Rooms held in memory.",
        s.rooms_loaded,
    );
    gauge("parlor_tickets", "Unused, unexpired tickets.", s.tickets);
    gauge(
        "parlor_room_tasks",
        "Room append tasks running.",
        s.room_tasks,
    );
    gauge("parlor_subscribers", "Live entry streams.", s.subscribers);
    let _ = writeln!(
        out,
        "# HELP parlor_seats Seats by state.\n# TYPE parlor_seats gauge"
    );
    for (state, n) in [
        ("reserved", s.seats_reserved),
        ("joined", s.seats_joined),
        ("grace", s.seats_grace),
    ] {
        let _ = writeln!(out, "parlor_seats{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP parlor_entries_appended_total Entries stored.\n# TYPE parlor_entries_appended_total counter\nparlor_entries_appended_total {}",
        s.entries_appended
    );
    let _ = writeln!(
        out,
        "# HELP parlor_too_slow_closes_total Connections closed with 4409.\n# TYPE parlor_too_slow_closes_total counter\nparlor_too_slow_closes_total {}",
        transport.too_slow_closes()
    );
    if let Some(bus) = bus {
        let _ = writeln!(
            out,
            "# HELP parlor_bus_rooms Rooms this node receives from Redis (it has subscribers there).\n# TYPE parlor_bus_rooms gauge\nparlor_bus_rooms {}\n\
             # HELP parlor_bus_received_entries_total Entries this node received through Redis on the channels of the rooms it follows (its own that came back included).\n# TYPE parlor_bus_received_entries_total counter\nparlor_bus_received_entries_total {}\n\
             # HELP parlor_bus_published_entries_total Entries this node published to Redis.\n# TYPE parlor_bus_published_entries_total counter\nparlor_bus_published_entries_total {}",
            bus.subscribed_rooms(),
            bus.received_entries(),
            bus.published_entries()
        );
    }
    webhooks(&mut out, &engine.webhooks());
    histogram(
        &mut out,
        "parlor_append_batch_size",
        "Entries per append transaction.",
        &engine.append_batch_sizes(),
    );
    histogram(
        &mut out,
        "parlor_send_ack_seconds",
        "Time from a send to its ack.",
        &transport.send_latency(),
    );
    out
}

/// A metric family of the webhooks: name, type, help, and each hook's value.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&WebhookStats) -> u64,
);

/// Each webhook's state, labelled by its name (URL without credentials or
/// query, and a hash).
fn webhooks(out: &mut String, hooks: &[WebhookStats]) {
    if hooks.is_empty() {
        return;
    }
    let families: [Family; 3] = [
        (
            "parlor_webhook_failing",
            "gauge",
            "1 while a webhook's retries wait their longest (10 s) without a success since.",
            |h| u64::from(h.failing),
        ),
        (
            "parlor_webhook_events_delivered_total",
            "counter",
            "Events a webhook's receiver took (2xx), redeliveries included.",
            |h| h.delivered,
        ),
        (
            "parlor_webhook_failed_requests_total",
            "counter",
            "Webhook requests that failed (not 2xx, or no answer).",
            |h| h.failed_tries,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for hook in hooks {
            // Prometheus label values escape `\`, `"` and newlines.
            let label = hook
                .hook
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(out, "{name}{{hook=\"{label}\"}} {}", value(hook));
        }
    }
}

fn histogram(out: &mut String, name: &str, help: &str, h: &HistogramSnapshot) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0;
    for (bound, count) in h.bounds.iter().zip(&h.counts) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count());
    let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", h.sum, h.count());
}
