//! `parlor_read_markers`: each (room, user)'s last-read seq, only ever
//! raised; a room's rows reference its `parlor_rooms` row.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "parlor_read_markers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub seq: i64,
}

impl ActiveModelBehavior for ActiveModel {}
