//! Shared helpers of the end-to-end suites.

/// The README's Rust examples, compiled as doc tests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;

/// Each crate's README examples, compiled as doc tests for the same reason.
#[cfg(doctest)]
pub mod crate_readmes {
    /// bulk-common.
    #[doc = include_str!("../crates/bulk-common/README.md")]
    pub struct BulkCommon;
    /// zefort-api.
    #[doc = include_str!("../crates/zefort-api/README.md")]
    pub struct ZefortApi;
    /// zoho-bulk.
    #[doc = include_str!("../crates/zoho-bulk/README.md")]
    pub struct ZohoBulk;
    /// chakra-api.
    #[doc = include_str!("../crates/chakra-api/README.md")]
    pub struct ChakraApi;
    /// unicat-api.
    #[doc = include_str!("../crates/unicat-api/README.md")]
    pub struct UnicatApi;
    /// vendor-sim.
    #[doc = include_str!("../crates/vendor-sim/README.md")]
    pub struct VendorSim;
}
