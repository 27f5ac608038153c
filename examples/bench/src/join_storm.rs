//! `join-storm`: K users reserve a seat in one room of capacity C at the
//! same instant. Exactly C may be admitted; the rest get `ROOM_FULL`.

use std::{sync::Arc, time::Instant};

use parlor_engine::Principal;
use parlor_engine::{ChatEngine, EngineConfig, ErrorKind, RoomId, UserId};
use tokio::sync::Barrier;

use crate::{
    report::{Line, Report},
    store,
};

pub(crate) struct Params {
    pub(crate) reserves: usize,
    pub(crate) capacity: u32,
    pub(crate) rounds: usize,
}

pub(crate) async fn run(p: &Params, report: &mut Report) {
    let bench = store::engine(None, EngineConfig::default()).await;
    let engine = bench.engine.clone();
    let prefix = store::run_prefix();
    let mut rates = Vec::new();
    let mut exact = true;
    for round in 0..p.rounds {
        // A stored, empty room: its creator joins, then leaves.
        let room = RoomId::new(&format!("{prefix}-storm{round}")).unwrap();
        store::empty_room(&engine, &room, p.capacity).await;

        let users: Vec<UserId> = (0..p.reserves)
            .map(|i| UserId::new(&format!("s{i}")).unwrap())
            .collect();
        let barrier = Arc::new(Barrier::new(p.reserves + 1));
        let tasks: Vec<_> = users
            .into_iter()
            .map(|user| {
                let (engine, room, barrier) = (engine.clone(), room.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let started = Instant::now();
                    let admitted = match engine
                        .reserve(&Principal::new(user.clone()), &room, None)
                        .await
                    {
                        Ok(_) => true,
                        Err(e) if e.kind() == ErrorKind::RoomFull => false,
                        Err(e) => panic!("reserve: {e}"),
                    };
                    (admitted, started, Instant::now())
                })
            })
            .collect();
        barrier.wait().await;
        // From the first reserve's start to the last one's end, as the
        // tasks saw it (this task may be scheduled last).
        let (mut admitted, mut first, mut last) = (0u32, None::<Instant>, None::<Instant>);
        for task in tasks {
            let (ok, started, finished) = task.await.expect("reserve task");
            admitted += u32::from(ok);
            first = Some(first.map_or(started, |f| f.min(started)));
            last = Some(last.map_or(finished, |l| l.max(finished)));
        }
        let elapsed = (last.unwrap() - first.unwrap()).as_secs_f64();
        let rate = (p.reserves as f64 / elapsed).round();
        exact &= admitted == p.capacity;
        rates.push(rate);
        report.emit(
            &Line::new("join-storm")
                .param("reserves", p.reserves)
                .param("capacity", p.capacity)
                .param("round", round)
                .metric("admitted", admitted)
                .metric("reserves_per_sec", rate)
                .metric("elapsed_ms", elapsed * 1000.0),
        );
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    report.target(
        &format!(
            "join-storm, {} reserves on capacity {}: exactly C admitted in every round",
            p.reserves, p.capacity
        ),
        f64::from(u8::from(exact)),
        "1 (yes)",
        exact,
    );
    if p.reserves == 10_000 && p.capacity == 100 {
        report.target(
            "join-storm, median reserves/s",
            median,
            "≥ 50000",
            median >= 50_000.0,
        );
    }
}
