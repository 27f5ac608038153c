//! `parlor_moderators`: the (room, user) pairs that moderate a room besides
//! its owner; a room's rows reference its `parlor_rooms` row.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "parlor_moderators")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
}

impl ActiveModelBehavior for ActiveModel {}
