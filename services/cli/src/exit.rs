//! Exit statuses that tell a supervisor (a Kubernetes Job's failure policy, a cron wrapper, a
//! person) whether to retry: a service that is down now is worth retrying (75, EX_TEMPFAIL);
//! a configuration that is wrong is not (78, EX_CONFIG); usage errors are clap's 2.

use recvault_config::SettingsError;
use recvault_db::DbError;
use recvault_queue::QueueError;
use recvault_store::StoreError;
use recvault_worker::run::StartError;

/// EX_TEMPFAIL: a service was unreachable or failed; the same command may succeed later.
pub const TRANSIENT: u8 = 75;
/// EX_CONFIG: the configuration (or the store it names) is wrong; retrying will not help.
pub const CONFIG: u8 = 78;
/// Anything else that went wrong.
pub const FAILURE: u8 = 1;

/// The exit status for an error, from the first cause in its chain that tells.
pub fn of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<SettingsError>() {
            return CONFIG;
        }
        if let Some(s) = cause.downcast_ref::<StartError>() {
            match s {
                StartError::MissingGuarantees(_) | StartError::Config(_) | StartError::Listen { .. } => return CONFIG,
                StartError::Spool { .. } | StartError::Media(_) => return FAILURE,
                StartError::Store(_) | StartError::Db(_) | StartError::Queue(_) => {}
            }
        }
        if let Some(s) = cause.downcast_ref::<recvault_api::StartError>() {
            // Its variants are transparent: the inner error is not in the chain on its own.
            return match s {
                recvault_api::StartError::Auth(_) | recvault_api::StartError::Listen { .. } => CONFIG,
                recvault_api::StartError::Db(d) => db(d),
                recvault_api::StartError::Queue(q) => queue(q),
            };
        }
        if let Some(d) = cause.downcast_ref::<DbError>() {
            return db(d);
        }
        if let Some(q) = cause.downcast_ref::<QueueError>() {
            return queue(q);
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return match s {
                StoreError::Service { status: 401 | 403, .. } => CONFIG,
                StoreError::Service { code, .. } if code == "NoSuchBucket" => CONFIG,
                StoreError::Transport { .. } | StoreError::Service { .. } => TRANSIENT,
                _ => FAILURE,
            };
        }
    }
    FAILURE
}

fn db(d: &DbError) -> u8 {
    match d {
        DbError::SchemaBehind { .. } => CONFIG,
        DbError::Sqlx(sqlx::Error::Configuration(_)) => CONFIG,
        DbError::Sqlx(sqlx::Error::Database(db)) if db.code().as_deref() == Some("28P01") => CONFIG,
        _ => TRANSIENT,
    }
}

fn queue(q: &QueueError) -> u8 {
    match q {
        // The broker refused the connection (wrong user, password or vhost): not a fault that
        // passes; network and broker faults are.
        QueueError::Connect(e) if !e.is_io_error() && e.is_amqp_error() => CONFIG,
        _ => TRANSIENT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_that_are_down_are_transient_and_configuration_is_not() {
        let down =
            anyhow::Error::new(StoreError::Transport { op: "GetObject", detail: "refused".into() }).context("fetching");
        assert_eq!(of(&down), TRANSIENT);
        let denied = anyhow::Error::new(StoreError::Service {
            op: "GetObject",
            status: 403,
            code: "AccessDenied".into(),
            message: String::new(),
        });
        assert_eq!(of(&denied), CONFIG);
        let behind = anyhow::Error::new(DbError::SchemaBehind { have: 3, need: 4 }).context("starting");
        assert_eq!(of(&behind), CONFIG);
        let missing = anyhow::Error::new(StartError::MissingGuarantees("object_lock".into()));
        assert_eq!(of(&missing), CONFIG);
        let no_keys = anyhow::Error::new(recvault_api::StartError::Auth(recvault_api::auth::AuthError::NoKeys))
            .context("starting the API");
        assert_eq!(of(&no_keys), CONFIG);
        let api_db = anyhow::Error::new(recvault_api::StartError::Db(DbError::Sqlx(sqlx::Error::PoolTimedOut)));
        assert_eq!(of(&api_db), TRANSIENT);
        let pool = anyhow::Error::new(DbError::Sqlx(sqlx::Error::PoolTimedOut));
        assert_eq!(of(&pool), TRANSIENT);
        assert_eq!(of(&anyhow::anyhow!("something else")), FAILURE);
    }
}
