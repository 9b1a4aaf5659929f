//! Integration tests of the server over a real socket, on SQLite and PostgreSQL. One test
//! binary for the crate (link time on two cores matters); areas are modules.
// Tests fail by panicking: unwrap, expect and panic are how they say what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod account_access;
mod account_changes;
mod apikeys;
mod authorize;
mod config;
mod cut_off;
mod device;
mod discovery;
mod dynamic_registration;
mod entitlements;
mod guard;
mod interop;
mod keys;
mod login;
mod login_kit;
mod logout;
mod mail;
mod mailbox;
mod mcp;
mod metadata_documents;
mod ops;
mod pages;
mod passkeys;
mod protocol;
mod recovery;
mod refresh;
mod registration;
mod resources;
mod robustness;
mod router;
mod second_factor;
mod secrets;
mod setup;
mod token;
