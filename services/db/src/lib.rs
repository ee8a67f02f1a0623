//! recvault-db: the Postgres adapter.
//!
//! Postgres is the system of record for what was archived and what was found. Every job result
//! is written in one transaction ([`Db::record_archived`], [`Db::record_quarantined`]) and the
//! queue message is acknowledged only after it commits. Uniqueness on the content hash and on the
//! station's job id makes a redelivered job a no-op.
//!
//! # Layout
//! - [`records`]: the rows written by the worker.
//! - [`cases`]: case closures, bundles and their download links (R19.1(2), R21.1).
//! - [`analysis`]: the activity a new recording belongs to, recomputed in the same transaction.
//! - [`queries`]: reads for the CLI and the tests.
//! - [`search`]: the typed read side of recordings (R18.1), keyset-paginated, for the CLI and the API.
//! - [`recoveries`]: recovery of unfinalized recordings (R2.1): work items, derived objects.
//! - [`reconcile`]: recorded archive objects, drift findings and reconcile runs (R21.1).
//! - `migrations/`: the schema (embedded; applied by [`Db::migrate`]).

pub mod analysis;
pub mod cases;
pub mod queries;
pub mod reconcile;
pub mod records;
pub mod recoveries;
pub mod search;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

/// The schema's migrations, embedded.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub use analysis::AnalysisOutcome;
pub use records::{
    ArchiveLocation, CompletedJob, ContentTx, NewQuarantine, NewRecording, Quarantined, Recorded, RecordedProtection,
};

/// `[database]` in `pipeline-config/recvault.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbConfig {
    /// Postgres URL of the service role (a member of `recvault_service`: reads, inserts and the
    /// raise-only paths, nothing else); may carry a password, so it is a secret and never logged.
    /// `?sslmode=require` (or `verify-full`) for TLS.
    pub url: SecretString,
    /// Postgres URL of the owner role that applies migrations (`recvault setup`); unset: `url`
    /// (a development set-up where one role does both).
    pub owner_url: Option<SecretString>,
    pub max_connections: u32,
    /// How long a job waits for a pooled connection before the attempt counts as a transient fault.
    pub acquire_timeout_ms: u64,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://postgres@127.0.0.1:5432/recvault"),
            owner_url: None,
            max_connections: 8,
            acquire_timeout_ms: 5_000,
        }
    }
}

/// The same Postgres URL with another database name (query parameters kept).
pub fn url_with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("postgres: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("postgres migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the database schema is at migration {have}, this build needs {need}: run `recvault setup` (as the owner role)"
    )]
    SchemaBehind { have: i64, need: i64 },
    #[error("postgres returned an invalid row: {0}")]
    Corrupt(String),
}

/// A stored `retention_class` code as the class it names (R19.1); an unknown code is a corrupt
/// row, never a guess.
pub(crate) fn retention_class(code: &str) -> Result<recvault_core::retention::RetentionClass, DbError> {
    recvault_core::retention::RetentionClass::from_code(code)
        .ok_or_else(|| DbError::Corrupt(format!("retention_class {code:?}")))
}

impl DbError {
    /// Stable code for logs and attempt records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sqlx(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) => "db_unreachable",
            Self::Sqlx(_) => "db_error",
            Self::Migrate(_) | Self::SchemaBehind { .. } => "db_migration",
            Self::Corrupt(_) => "db_corrupt",
        }
    }
}

/// A connection pool.
#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    /// Creates the pool lazily: the first query connects, so a worker can start while Postgres
    /// is still coming up and count the wait as a transient fault of its first job.
    pub fn connect_lazy(cfg: &DbConfig) -> Result<Self, DbError> {
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(Duration::from_millis(cfg.acquire_timeout_ms))
            .connect_lazy(cfg.url.expose_secret())?;
        Ok(Self { pool })
    }

    /// Connects now and fails if Postgres cannot be reached.
    pub async fn connect(cfg: &DbConfig) -> Result<Self, DbError> {
        let db = Self::connect_lazy(cfg)?;
        sqlx::query("select 1").execute(&db.pool).await?;
        Ok(db)
    }

    /// Applies pending migrations as the owner role (`owner_url`, else `url`); concurrent callers
    /// are serialised by sqlx's advisory lock.
    pub async fn migrate(cfg: &DbConfig) -> Result<(), DbError> {
        let url = cfg.owner_url.as_ref().unwrap_or(&cfg.url);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_millis(cfg.acquire_timeout_ms))
            .connect(url.expose_secret())
            .await?;
        let result = MIGRATOR.run(&pool).await;
        pool.close().await;
        Ok(result?)
    }

    /// Fails unless every migration of this build is applied (the services do not migrate:
    /// their role cannot).
    pub async fn check_schema(&self) -> Result<(), DbError> {
        let need = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let have: Option<i64> = sqlx::query_scalar("select max(version) from _sqlx_migrations where success")
            .fetch_one(&self.pool)
            .await
            .or_else(|e| match &e {
                sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => Ok(None),
                _ => Err(e),
            })?;
        let have = have.unwrap_or(0);
        if have < need { Err(DbError::SchemaBehind { have, need }) } else { Ok(()) }
    }

    /// A round trip to Postgres (readiness).
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_urls_keep_their_credentials_and_query() {
        assert_eq!(super::url_with_database("postgres://u:p@h:5432/postgres", "x"), "postgres://u:p@h:5432/x");
        assert_eq!(
            super::url_with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
