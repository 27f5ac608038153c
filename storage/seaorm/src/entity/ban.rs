//! `parlor_bans`: one ban per (room, user), replaced by a later one; a
//! room's rows reference its `parlor_rooms` row. `until_ms` is NULL for a
//! ban that never lapses.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "parlor_bans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub until_ms: Option<i64>,
    pub reason: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
