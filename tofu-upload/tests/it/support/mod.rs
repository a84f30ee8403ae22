pub mod capture;
pub mod outbox;
pub mod server;
