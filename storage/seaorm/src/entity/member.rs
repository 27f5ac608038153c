//! `parlor_members`: (room, user) pairs whose latest membership entry is a
//! `join`, kept in step with the log in the append transaction, so start-up
//! can close what a crash left open without scanning the logs.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "parlor_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
}

impl ActiveModelBehavior for ActiveModel {}
