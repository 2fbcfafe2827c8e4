//! The paper's own inputs, one command each: the public dataset from its
//! Zenodo record ([`dataset`]) and ImageNet weights by name ([`weights`]).
//!
//! Downloads go through one blocking HTTP client on rustls ([`http`]):
//! partial files beside their destination, resumed with HTTP ranges,
//! verified against published checksums ([`digest`]) before anything is
//! put in place. Archives are unpacked with the `zip` and `tar` crates,
//! refusing entries that would land outside their folder ([`unpack`]).
//! Progress is reported through [`FetchEvent`]s; the library draws nothing.

pub mod dataset;
pub mod digest;
pub mod http;
pub mod unpack;
pub mod weights;
pub mod zenodo;

#[cfg(test)]
pub(crate) mod test_server;

/// What a fetch reports while it works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// A step worth a line of log.
    Note(String),
    /// Progress of downloading `file`.
    Download {
        /// The file's name.
        file: String,
        /// How far it is.
        progress: http::Progress,
    },
}
