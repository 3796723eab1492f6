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
        /// A JSON object of plugin annotations.
        pub extra: String,
        /// The sender's XEP-0359 id.
        pub origin_id: Option<String>,
        /// The archive's XEP-0359 id, and whose archive gave it.
        pub stanza_id: Option<String>,
        pub stanza_id_by: Option<String>,
        /// `received`, `queued`, `sent`, `acked`, `cancelled`.
        pub state: String,
        /// On an applied correction: the id of the message it corrected.
        pub replaces: Option<String>,
        /// While in the outbox: the stanza to send.
        pub stanza: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "job")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub profile_id: i32,
        pub plugin: String,
        pub kind: String,
        pub description: String,
        pub state: String,
        pub status: String,
        pub percent: Option<f64>,
        pub created: i64,
        pub updated: i64,
        pub result: Option<String>,
        pub error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod job_progress {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "job_progress")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub job_id: String,
        pub at: i64,
        pub status: String,
        pub percent: Option<f64>,
        pub data: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod daemon_node {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "daemon_node")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub host: String,
        pub pid: i64,
        /// Milliseconds since the Unix epoch.
        pub started_at: i64,
        pub heartbeat_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod profile_lease {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "profile_lease")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub profile_id: i32,
        /// The `daemon_node` that owns the profile.
        pub owner: String,
        /// Raised at every acquisition; writes check it.
        pub token: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
