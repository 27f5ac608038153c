//! `parlor_entries`: the room logs. The primary key (room_id, seq) makes a
//! seq unique per room; a unique index on (client_id, sender, room_id) makes
//! sends idempotent (NULL client ids of join/leave entries never collide).
//! `data` is the JSON text of a message's object, `reason` why a `leave`
//! took a seat away or a `redaction`'s note (the kind says which; both NULL
//! when absent). `target_seq` is the entry an `edit` or `redaction`
//! changes, `edited_at` when a `text` entry was last edited (milliseconds,
//! like `created_at`), and `redacted` says that a message's (or an edit's)
//! body and data were erased.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "parlor_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub sender: String,
    pub client_id: Option<String>,
    pub body: Option<String>,
    pub created_at: i64,
    pub data: Option<String>,
    pub reason: Option<String>,
    pub target_seq: Option<i64>,
    pub edited_at: Option<i64>,
    pub redacted: bool,
}

impl ActiveModelBehavior for ActiveModel {}
