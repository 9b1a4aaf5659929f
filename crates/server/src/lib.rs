//! The Postern HTTP server.
//!
//! `main` and the tests start it the same way: [`Application::build`] opens the database,
//! applies migrations, loads the key-encryption key and the signing keys, binds the listener
//! (port 0 in tests) and returns; [`Application::port`] says where it listens;
//! [`Application::run_until_stopped`] serves until the shutdown future completes, then drains
//! in-flight requests within a grace period and stops the background tasks.

pub mod access;
pub mod accounts;
pub mod apikeys;
pub mod audit;
pub mod authorization;
pub mod bootstrap;
pub mod client_cache;
pub mod client_registration;
pub mod clients;
pub mod config;
pub mod device_polls;
pub mod edge;
pub mod email_change;
pub mod entitlements;
pub mod error;
pub mod grants;
pub mod invitations;
pub mod kek;
pub mod keyring;
pub mod known_users;
pub mod letters;
pub mod limits;
pub mod mail;
pub mod maintenance;
pub mod metadata_documents;
pub mod metrics;
pub mod node;
pub mod passkeys;
pub mod passwords;
pub mod per_thread;
pub mod recovery;
pub mod registration;
pub mod resources;
pub mod revocations;
pub mod routes;
pub mod second_factor;
pub mod serve;
pub mod session;
pub mod sign_in;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
pub mod verified_tokens;

pub use config::Config;
pub use startup::{Application, StartError, open_store};
