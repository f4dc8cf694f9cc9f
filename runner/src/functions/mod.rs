//! Serverless functions on the host: [`build`] makes one image per `#[unikernel::function]`
//! of a crate (`cargo uk functions build`), [`manifest`] is what it writes for the gateway
//! (`functions.json`, the contract between the two).

pub mod build;
pub mod manifest;
pub mod serve;

pub use build::{Built, build};
pub use manifest::{Function, Manifest, Mode};
