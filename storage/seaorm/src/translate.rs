//! Database errors → engine errors, in one place, and the few database
//! errors the rest of the crate tests for or raises.
//!
//! Anything that means "try again" (unreachable, pool exhausted, SQLite busy
//! or locked, Postgres serialization failure, deadlock or shutdown) becomes a
//! temporary `UNAVAILABLE`; the rest is `INTERNAL`. The database's own text
//! goes along as the error's *source*, for logs; clients only ever see the
//! engine's message.

use parlor_engine::{Error, ErrorKind};
use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};

/// Translates a SeaORM error.
pub(crate) fn translate(err: DbErr) -> Error {
    if is_temporary(&err) {
        Error::unavailable(err)
    } else {
        Error::internal(err)
    }
}

/// Translates an append's error: a room that is not stored (see
/// [`room_not_stored`], or the entries' foreign key: a room purged
/// meanwhile) is `ROOM_NOT_FOUND`, the rest as [`translate`].
pub(crate) fn translate_append(err: DbErr) -> Error {
    let missing = matches!(err, DbErr::RecordNotFound(_))
        || matches!(
            err.sql_err(),
            Some(SqlErr::ForeignKeyConstraintViolation(_))
        );
    if missing {
        return Error::new(
            ErrorKind::RoomNotFound,
            "append to a room that is not stored",
        )
        .with_source(err);
    }
    translate(err)
}

/// Translates the error of a write to a per-room set (invitations,
/// moderators, bans): a room their foreign key does not find is the
/// caller's `ROOM_NOT_FOUND`, the rest as [`translate`].
pub(crate) fn translate_per_room(err: DbErr) -> Error {
    if matches!(
        err.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    ) {
        Error::from(ErrorKind::RoomNotFound).with_source(err)
    } else {
        translate(err)
    }
}

/// Whether a unique index refused the statement. Callers read it as news,
/// not failure: a room id already taken, a send already stored (its
/// idempotency key), or a head another writer moved (the entries' key).
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// An append to a room that is not stored: the store refuses the batch
/// ([`translate_append`] reports it to the caller).
pub(crate) fn room_not_stored(room_id: &str) -> DbErr {
    DbErr::RecordNotFound(format!("room {room_id} is not stored"))
}

fn is_temporary(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_is_temporary(e)
        }
        _ => false,
    }
}

fn sqlx_is_temporary(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| temporary_code(&code)),
        _ => false,
    }
}

/// A SQLSTATE (Postgres) has exactly five characters; a SQLite result code is
/// a number of at most four digits. SQLite: primary codes 5 (BUSY) and 6
/// (LOCKED) and their extended forms (low byte 5 or 6). Postgres: class 08
/// (connection), 40001 (serialization), 40P01 (deadlock), 53 (resources),
/// 57P (shutdown).
fn temporary_code(code: &str) -> bool {
    if code.len() < 5 {
        return code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
    }
    code.starts_with("08")
        || code == "40001"
        || code == "40P01"
        || code.starts_with("53")
        || code.starts_with("57P")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_that_mean_retry() {
        for code in [
            "5", "6", "517", "262", "08006", "40001", "40P01", "57P01", "53300",
        ] {
            assert!(temporary_code(code), "{code}");
        }
        for code in ["19", "2067", "1555", "23505", "42P01", "22001"] {
            assert!(!temporary_code(code), "{code}");
        }
    }

    #[test]
    fn pool_timeouts_are_temporary_and_text_stays_internal() {
        let err = translate(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout));
        assert_eq!(err.code(), "UNAVAILABLE");
        let err = translate(DbErr::Custom(
            "relation \"secret_table\" does not exist".into(),
        ));
        assert_eq!(err.code(), "INTERNAL");
        assert!(!err.message().contains("secret_table"));
    }
}
