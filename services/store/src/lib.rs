//! recvault-store: the S3 adapter.
//!
//! Three locations: the **staging** bucket, where docking stations put files; the **archive**
//! bucket (versioning, Object Lock, a lifecycle rule that expires only `retention=2y` objects after
//! 730 days, R19.1), where recordings live under content-addressed keys; and the **quarantine**
//! prefix of the archive bucket, where bytes that are not a valid recording are kept with
//! permanent retention (R2.1: nothing is lost).
//!
//! S3-compatible servers differ in what they really do, and several answer 200 to headers they
//! ignore. [`capabilities`] therefore checks behaviour on a throwaway bucket (a tag reads back, a
//! locked version refuses deletion, a lifecycle tag filter survives a round trip) and the worker
//! refuses to run without the WORM guarantees unless configured as a development set-up.
//!
//! # Layout
//! - [`config`]: `[s3]` settings and client construction.
//! - [`error`]: [`StoreError`], with transient and permanent faults told apart.
//! - [`objects`]: version-pinned reads, hashing reads, version-exact deletes, tags and locks.
//! - [`archive`]: archive writes that prove their content (copy of the exact version, read back
//!   and hashed, upload with Content-MD5 where the copy did not give the verified bytes).
//! - [`capabilities`]: the behaviour probe and the archive bucket check.
//! - [`setup`]: bucket creation and the lifecycle rule.
//! - [`upload`]: streaming multipart uploads of objects recvault makes (bundles), per-part Content-MD5.

pub mod archive;
pub mod capabilities;
pub mod config;
pub mod error;
pub mod objects;
pub mod setup;
pub mod upload;

pub use archive::{ArchiveRequest, ArchivedObject, CopySource, Placement};
pub use capabilities::{Capabilities, Capability, expiry_rule};
pub use config::{LockMode, StoreConfig};
pub use error::StoreError;
pub use objects::{ObjectHead, Protection, StagedRead, VersionEntry};
pub use upload::{MultipartUpload, UploadedPart};

/// The object store: one S3 client and the bucket layout.
#[derive(Debug, Clone)]
pub struct Store {
    client: aws_sdk_s3::Client,
    cfg: StoreConfig,
}

impl Store {
    pub async fn connect(cfg: StoreConfig) -> Self {
        let client = config::client(&cfg).await;
        Self { client, cfg }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The raw client, for tests and tools that inspect the store directly.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}
