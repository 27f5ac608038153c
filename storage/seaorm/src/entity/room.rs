//! `parlor_rooms`: one row per stored room; `last_seq` is the log's head,
//! advanced inside each append transaction. `owner_id` is NULL for rooms
//! stored before rooms had owners; `closed` marks a room closed with its
//! log kept.

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
}

impl ActiveModelBehavior for ActiveModel {}
