//! The cluster's seat SQL that both the append and the seat leases run:
//! the database's clock and the live-seat lookup. Postgres only (a cluster
//! needs it), but with no arrays, so it builds without the `postgres`
//! feature like the leases do. It sits below both users, so that the append
//! need not reach up into the leases for it.

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

/// The database's clock in Unix milliseconds: every node reads the same one.
pub(crate) const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint";

/// Which of `pairs` (room, user) hold a live seat (on a node other than
/// `except`).
pub(crate) async fn live_seats<'a>(
    txn: &impl ConnectionTrait,
    pairs: impl Iterator<Item = &'a (&'a str, &'a str)>,
    except: Option<&str>,
) -> Result<HashSet<(String, String)>, DbErr> {
    let mut values: Vec<Value> = Vec::new();
    let mut tuples = Vec::new();
    for &(room, user) in pairs {
        values.push(room.into());
        values.push(user.into());
        tuples.push(format!("(${}, ${})", values.len() - 1, values.len()));
    }
    let mut sql = format!(
        "SELECT DISTINCT s.room_id, s.user_id FROM parlor_seats s \
         JOIN parlor_nodes n ON n.id = s.node_id \
         WHERE n.expires_ms > {NOW_MS} AND (s.room_id, s.user_id) IN ({})",
        tuples.join(", ")
    );
    if let Some(node) = except {
        values.push(node.into());
        sql.push_str(&format!(" AND s.node_id <> ${}", values.len()));
    }
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}
