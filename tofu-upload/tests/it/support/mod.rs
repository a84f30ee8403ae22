pub mod capture;
pub mod outbox;
pub mod server;
pub mod v2_schema;
