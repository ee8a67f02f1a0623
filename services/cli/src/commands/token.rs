//! `recvault token`: a local Ed25519 signing key and bearer tokens made with it, for the demo,
//! the tests and deployments without an identity provider. The API verifies tokens against the
//! public key (`api.jwks_file`).

use anyhow::Context;
use recvault_api::auth::Claims;
use recvault_config::Settings;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make a signing key (signing-key.pk8, mode 0600) and its public JWKS (jwks.json) in DIR
    Keygen {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Key id, named in every token's header
        #[arg(long, default_value = "recvault-local-1")]
        kid: String,
    },
    /// Print a token signed with a key from `keygen`
    Issue(IssueArgs),
}

#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// The signing key (PKCS#8 DER, from `recvault token keygen`)
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[arg(long, default_value = "recvault-local-1")]
    kid: String,
    /// Subject: a case system's client id, a person's staff number
    #[arg(long)]
    sub: String,
    /// Role: case_system, administrator, unit_head, supervisor, ops; repeat for several
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// The unit the subject acts for
    #[arg(long)]
    unit: String,
    /// Minutes until it expires
    #[arg(long, default_value_t = 60)]
    ttl_mins: i64,
}

pub fn run(config: Option<&std::path::Path>, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Keygen { dir, kid } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let (der, jwks) = recvault_api::tokens::keygen(&kid)?;
            let key = dir.join("signing-key.pk8");
            let mut f = std::fs::OpenOptions::new();
            f.write(true).create(true).truncate(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
            f.open(&key).with_context(|| format!("writing {}", key.display()))?.write_all(&der)?;
            let jwks_path = dir.join("jwks.json");
            std::fs::write(&jwks_path, serde_json::to_string_pretty(&jwks)? + "\n")?;
            println!(
                "signing key {} (keep it secret), public keys {} (api.jwks_file)",
                key.display(),
                jwks_path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Issue(a) => {
            let settings = Settings::load(config).context("loading configuration")?;
            for r in &a.roles {
                anyhow::ensure!(recvault_core::access::Role::from_code(r).is_some(), "unknown role {r:?}");
            }
            let der = std::fs::read(&a.key).with_context(|| format!("reading {}", a.key.display()))?;
            let now = chrono::Utc::now().timestamp();
            let claims = Claims {
                sub: a.sub,
                roles: a.roles,
                unit: a.unit,
                iss: settings.api.issuer.clone(),
                aud: settings.api.audience.clone(),
                exp: now + a.ttl_mins * 60,
                iat: Some(now),
                nbf: None,
            };
            println!("{}", recvault_api::tokens::issue(&der, &a.kid, &claims)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
