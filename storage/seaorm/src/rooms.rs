//! The rooms' lifecycle queries of the `Store` port: the listing, updates,
//! closing, and purging a room with everything stored about it.

use parlor_engine::{ControlEvent, RoomId, RoomPatch, StoredRoom};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Statement, TransactionTrait, Value,
    sea_query::{Alias, Expr, ExprTrait, Query},
};

use crate::{
    entity::{ban, entry, invite, member, moderator, read_marker, room},
    rows::{retention_columns, to_room},
    transactions::immediate,
    webhooks,
};

/// Above every character a room id may hold ([A-Za-z0-9_-], all ASCII):
/// an id starts with `prefix` exactly when it sorts in
/// `prefix..prefix + LAST`, in byte order.
const LAST: char = '\u{7f}';

/// Up to `limit` open rooms whose id starts with `prefix`, after `after`,
/// ascending by id in byte order.
///
/// The prefix is matched as a range of ids, not with LIKE, which would read
/// `_` as any character. Postgres compares and orders with `COLLATE "C"`
/// (byte order), whatever the database's collation; an index on that
/// expression (migration `m0007`) serves it. SQLite's default collation is
/// byte order already, and its primary key serves it.
pub(crate) async fn list(
    db: &DatabaseConnection,
    prefix: &str,
    after: Option<&RoomId>,
    limit: u32,
) -> Result<Vec<StoredRoom>, DbErr> {
    // No room id starts with what no room id can begin with (and a NUL,
    // which Postgres text refuses, never reaches it).
    if !prefix.is_empty() && RoomId::new(prefix).is_err() {
        return Ok(Vec::new());
    }
    const SQLITE: &str = "SELECT * FROM parlor_rooms \
         WHERE id >= ?1 AND id < ?2 AND id > ?3 AND NOT closed \
         ORDER BY id LIMIT ?4";
    const POSTGRES: &str = "SELECT * FROM parlor_rooms \
         WHERE id COLLATE \"C\" >= $1 AND id COLLATE \"C\" < $2 \
           AND id COLLATE \"C\" > $3 AND NOT closed \
         ORDER BY id COLLATE \"C\" LIMIT $4";
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        POSTGRES
    } else {
        SQLITE
    };
    // Every id is non-empty, so it sorts after "".
    let after = after.map_or("", RoomId::as_str);
    let values: [Value; 4] = [
        prefix.into(),
        format!("{prefix}{LAST}").into(),
        after.into(),
        i64::from(limit).into(),
    ];
    let rows = room::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await?;
    rows.into_iter().map(to_room).collect()
}

/// Applies `patch` to room `id` and returns the room as stored now; `None`
/// when it is not stored.
pub(crate) async fn update(
    db: &DatabaseConnection,
    id: &RoomId,
    patch: &RoomPatch,
) -> Result<Option<StoredRoom>, DbErr> {
    let mut update = room::Entity::update_many().filter(room::Column::Id.eq(id.as_str()));
    let mut changes = false;
    if let Some(title) = &patch.title {
        update = update.col_expr(room::Column::Title, Expr::value(title.clone()));
        changes = true;
    }
    if let Some(capacity) = patch.capacity {
        // As at creation: the engine bounds a capacity far below i32::MAX.
        update = update.col_expr(room::Column::Capacity, Expr::value(capacity as i32));
        changes = true;
    }
    if let Some(retention) = &patch.retention {
        // A retention of its own, or none (`own_retention` false): the
        // three columns change together.
        let (own, max_entries, max_age_ms) = retention_columns(retention.as_ref());
        update = update
            .col_expr(room::Column::OwnRetention, Expr::value(own))
            .col_expr(room::Column::RetentionMaxEntries, Expr::value(max_entries))
            .col_expr(room::Column::RetentionMaxAgeMs, Expr::value(max_age_ms));
        changes = true;
    }
    let row = if changes {
        // One statement: the row returned is the row written.
        update.exec_with_returning(db).await?.into_iter().next()
    } else {
        room::Entity::find_by_id(id.as_str()).one(db).await?
    };
    row.map(to_room).transpose()
}

/// Marks room `id` closed (its log stays), with its `room.closed` outbox
/// row the first time, in one transaction; false when it is not stored.
pub(crate) async fn close(db: &DatabaseConnection, id: &RoomId) -> Result<bool, DbErr> {
    let txn = db.begin_with_options(immediate()).await?;
    let done = room::Entity::update_many()
        .col_expr(room::Column::Closed, Expr::value(true))
        .filter(room::Column::Id.eq(id.as_str()))
        .filter(room::Column::Closed.eq(false))
        .exec(&txn)
        .await?;
    let stored = if done.rows_affected > 0 {
        webhooks::write_outbox(&txn, id, &ControlEvent::RoomClosed).await?;
        true
    } else {
        // Closing a closed room again answers true, and writes nothing.
        room::Entity::find_by_id(id.as_str())
            .one(&txn)
            .await?
            .is_some()
    };
    txn.commit().await?;
    Ok(stored)
}

/// Deletes room `id` and everything stored about it, in one transaction:
/// its log, open members, invitations, moderators, bans, read markers,
/// cluster seats, and last its row. False when it is not stored.
pub(crate) async fn purge(db: &DatabaseConnection, id: &RoomId) -> Result<bool, DbErr> {
    let txn = db.begin_with_options(immediate()).await?;
    // The room's row is locked first (Postgres; SQLite has one writer), so
    // an append waits and then finds no room, instead of adding an entry
    // between the entries' DELETE and the room's.
    let stored = room::Entity::find_by_id(id.as_str())
        .lock_exclusive()
        .one(&txn)
        .await?;
    if stored.is_none() {
        return Ok(false);
    }
    let room_id = id.as_str();
    entry::Entity::delete_many()
        .filter(entry::Column::RoomId.eq(room_id))
        .exec(&txn)
        .await?;
    member::Entity::delete_many()
        .filter(member::Column::RoomId.eq(room_id))
        .exec(&txn)
        .await?;
    invite::Entity::delete_many()
        .filter(invite::Column::RoomId.eq(room_id))
        .exec(&txn)
        .await?;
    moderator::Entity::delete_many()
        .filter(moderator::Column::RoomId.eq(room_id))
        .exec(&txn)
        .await?;
    ban::Entity::delete_many()
        .filter(ban::Column::RoomId.eq(room_id))
        .exec(&txn)
        .await?;
    read_marker::Entity::delete_many()
        .filter(read_marker::Column::RoomId.eq(room_id))
        .exec(&txn)
        .await?;
    // A cluster's seat leases (`leases`) have no entity; the table exists
    // on both databases (only Postgres fills it).
    let seats = Query::delete()
        .from_table(Alias::new("parlor_seats"))
        .and_where(Expr::col(Alias::new("room_id")).eq(room_id))
        .to_owned();
    txn.execute(&seats).await?;
    room::Entity::delete_by_id(room_id).exec(&txn).await?;
    webhooks::rewind_purged(&txn, id).await?;
    webhooks::write_outbox(&txn, id, &ControlEvent::RoomPurged).await?;
    txn.commit().await?;
    Ok(true)
}
