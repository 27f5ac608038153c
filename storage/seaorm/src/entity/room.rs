//! `parlor_rooms`: one row per stored room; `last_seq` is the log's head,
//! advanced inside each append transaction. `owner_id` is NULL for rooms
//! stored before rooms had owners; `closed` marks a room closed with its
//! log kept. `first_seq` is the oldest seq retention left; with
//! `own_retention`, the room keeps its own retention (`retention_max_entries`,
//! `retention_max_age_ms`, each NULL for no such bound) instead of the
//! server's.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "parlor_rooms")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub capacity: i32,
    pub title: Option<String>,
    pub last_seq: i64,
    pub created_at: i64,
    pub owner_id: Option<String>,
    pub private: bool,
    pub closed: bool,
    pub first_seq: i64,
    pub own_retention: bool,
    pub retention_max_entries: Option<i64>,
    pub retention_max_age_ms: Option<i64>,
}

impl ActiveModelBehavior for ActiveModel {}
