//! `churn`: many short lives of a seat — reserve and commit, then leave, or
//! drop (grace), or never commit (the reservation expires) — from many tasks
//! at once, on the engine in-process over SQLite. Afterwards nothing may be
//! left: no seat, ticket, task or pending room; and memory back near where
//! it was once warm.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parlor_engine::Principal;
use parlor_engine::{ChatEngine, EngineConfig, EngineStats, RoomId, UserId};

use crate::{
    report::{Line, Report},
    rss::rss_bytes,
    store,
};

pub(crate) struct Params {
    pub(crate) cycles: u64,
    pub(crate) workers: usize,
    pub(crate) rooms: usize,
}

const TTL: Duration = Duration::from_millis(300);

pub(crate) async fn run(p: &Params, report: &mut Report) {
    let config = EngineConfig::default()
        .reservation_ttl(TTL)
        .reconnect_grace(TTL);
    let bench = store::engine(None, config).await;
    let engine = bench.engine.clone();
    let prefix = store::run_prefix();
    let rooms: Vec<RoomId> = (0..p.rooms)
        .map(|r| RoomId::new(&format!("{prefix}-c{r}")).unwrap())
        .collect();
    for room in &rooms {
        store::empty_room(&engine, room, 10_000).await;
    }
    // Warm up with a tenth of the cycles, so the start is a warm process.
    let warmup = (p.cycles / 10).max(1);
    cycles(&engine, &rooms, warmup, p.workers, 0).await;
    quiesce(&engine).await;
    let rss_start = rss_bytes(None).unwrap_or(0);
    let before = engine.stats();

    let started = Instant::now();
    cycles(&engine, &rooms, p.cycles, p.workers, warmup).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = quiesce(&engine).await;
    let rss_end = rss_bytes(None).unwrap_or(0);
    let growth = (rss_end as f64 - rss_start as f64) / rss_start.max(1) as f64 * 100.0;
    report.emit(
        &Line::new("churn")
            .param("cycles", p.cycles)
            .param("workers", p.workers)
            .param("rooms", p.rooms)
            .metric("cycles_per_sec", (p.cycles as f64 / elapsed).round())
            .metric("seats_before", before.seats())
            .metric("seats_after", after.seats())
            .metric("tickets_after", after.tickets)
            .metric("room_tasks_after", after.room_tasks)
            .metric("rooms_loaded_after", after.rooms_loaded)
            .metric("subscribers_after", after.subscribers)
            .metric("rss_start_bytes", rss_start)
            .metric("rss_end_bytes", rss_end)
            .metric("rss_growth_pct", growth),
    );
    let clean =
        after.seats() == 0 && after.tickets == 0 && after.room_tasks == 0 && after.subscribers == 0;
    report.target(
        &format!(
            "churn, {} cycles: seats, tickets, tasks and streams left",
            p.cycles
        ),
        after.seats() as f64,
        "0",
        clean,
    );
    report.target(
        "churn, RSS growth over the run (%)",
        growth,
        "≤ 10",
        growth <= 10.0,
    );
}

/// `n` cycles over `workers` tasks; cycle `i` does kind `i % 4`.
async fn cycles(
    engine: &parlor_engine::Engine,
    rooms: &[RoomId],
    n: u64,
    workers: usize,
    offset: u64,
) {
    let next = Arc::new(AtomicU64::new(0));
    let rooms: Arc<[RoomId]> = rooms.into();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (engine, next, rooms) = (engine.clone(), Arc::clone(&next), Arc::clone(&rooms));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let i = i + offset;
                    let room = &rooms[(i as usize) % rooms.len()];
                    let user = UserId::new(&format!("u{}", i % 5_000)).unwrap();
                    let ticket = engine
                        .reserve(&Principal::new(user.clone()), room, None)
                        .await
                        .expect("reserve");
                    match i % 4 {
                        0 => {} // never committed: the reservation expires
                        kind => {
                            let membership = engine
                                .commit(&Principal::new(user.clone()), &ticket.ticket, None)
                                .await;
                            // Another worker's leave may have invalidated the ticket.
                            let Ok(membership) = membership else { continue };
                            if kind == 3 {
                                let _ = engine
                                    .send(
                                        &Principal::new(user.clone()),
                                        room,
                                        &format!("c{i}"),
                                        "churn",
                                    )
                                    .await;
                            }
                            if kind == 1 {
                                drop(membership); // lost: grace, then freed
                            } else {
                                let _ = membership.leave().await;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("churn worker");
    }
}

/// Waits out every ttl and grace, then until the engine holds nothing.
async fn quiesce(engine: &parlor_engine::Engine) -> EngineStats {
    tokio::time::sleep(TTL * 2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        engine.run_maintenance().await;
        let stats = engine.stats();
        let idle = stats.seats() == 0
            && stats.tickets == 0
            && stats.room_tasks == 0
            && stats.grace_timers == 0;
        if idle || Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
