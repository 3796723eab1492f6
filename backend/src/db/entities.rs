//! sea-orm entities of the core tables (the schema itself lives in `perch-migration`).

pub mod profile {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "profile")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub name: String,
        pub jid: String,
        /// Sealed (see `secret`), never clear text.
        pub password: String,
        pub server: Option<String>,
        pub ca_file: Option<String>,
        pub insecure: bool,
        pub autoconnect: bool,
        pub is_default: bool,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "message")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub profile_id: i32,
        pub msg_id: String,
        /// Microseconds since the Unix epoch, UTC.
        pub timestamp: i64,
        pub direction: String,
        pub peer: String,
        pub from_jid: String,
        pub to_jid: String,
        pub kind: String,
        pub body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
