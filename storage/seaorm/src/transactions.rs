//! How the store's own write transactions begin.

use sea_orm::{SqliteTransactionMode, TransactionOptions};

/// A transaction that takes SQLite's write lock at BEGIN (as the append
/// does), so it never fails to upgrade a read lock midway; on Postgres an
/// ordinary transaction.
pub(crate) fn immediate() -> TransactionOptions {
    TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    }
}
