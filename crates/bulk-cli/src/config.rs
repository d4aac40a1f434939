//! Settings and credentials: the environment, `--<vendor>-...-file` flags and the config file.
//!
//! Every setting has an environment variable (the one the vendor crate's `from_env` reads, such
//! as `ZOHO_OWNER`) and a config-file key: the variable's name without the vendor prefix, in
//! lower case, in the vendor's table (`owner` in `[zoho]`). A secret may also be given as a file
//! (`client_secret_file = "/run/secrets/zoho"` in the config, or `--zoho-client-secret-file`).
//! Precedence: a flag, then the environment, then the config file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use bulk_common::SecretString;

use crate::cli::Global;

/// Where settings come from. Not `Debug`: the config file may hold secrets inline.
pub(crate) struct Settings {
    file: Option<(PathBuf, toml::Table)>,
    secret_files: HashMap<&'static str, PathBuf>,
}

/// The config file's default place: `$XDG_CONFIG_HOME/bulk/config.toml` (or the platform's
/// equivalent).
pub(crate) fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("bulk").join("config.toml"))
}

impl Settings {
    /// Reads the config file (`--config`, which must exist, or the default, which may not).
    pub(crate) fn load(global: &Global) -> anyhow::Result<Settings> {
        let file = match &global.config {
            Some(path) => Some((path.clone(), read_table(path)?)),
            None => match default_config_path() {
                Some(path) if path.exists() => Some((path.clone(), read_table(&path)?)),
                _ => None,
            },
        };
        let mut secret_files = HashMap::new();
        let flags = [
            ("ZOHO_CLIENT_SECRET", &global.zoho_client_secret_file),
            ("ZOHO_REFRESH_TOKEN", &global.zoho_refresh_token_file),
            ("CHAKRA_TOKEN", &global.chakra_token_file),
            ("ZEFORT_API_KEY", &global.zefort_api_key_file),
            ("UNICAT_API_KEY", &global.unicat_api_key_file),
        ];
        for (name, path) in flags {
            if let Some(path) = path {
                secret_files.insert(name, path.clone());
            }
        }
        Ok(Settings { file, secret_files })
    }

    /// The config table and key of an environment variable name (`ZOHO_OWNER`: `zoho`, `owner`).
    fn config_key(name: &str) -> (String, String) {
        let (vendor, key) = name.split_once('_').unwrap_or((name, ""));
        (vendor.to_ascii_lowercase(), key.to_ascii_lowercase())
    }

    fn config_value(&self, name: &str, suffix: &str) -> anyhow::Result<Option<String>> {
        let Some((path, table)) = &self.file else {
            return Ok(None);
        };
        let (vendor, key) = Self::config_key(name);
        let key = format!("{key}{suffix}");
        match table.get(&vendor).and_then(|t| t.get(&key)) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => bail!("{}: [{vendor}] {key} must be a string", path.display()),
        }
    }

    /// A plain setting, if given.
    pub(crate) fn value(&self, name: &str) -> anyhow::Result<Option<String>> {
        if let Some(v) = env(name) {
            return Ok(Some(v));
        }
        Ok(self
            .config_value(name, "")?
            .filter(|v| !v.trim().is_empty()))
    }

    /// A plain setting that must be given.
    pub(crate) fn require(&self, name: &str) -> anyhow::Result<String> {
        self.value(name)?.ok_or_else(|| missing(name, false))
    }

    /// A secret, if given: from its flag's file, the environment, or the config file (as a
    /// `_file` path or inline).
    pub(crate) fn secret(&self, name: &str) -> anyhow::Result<Option<SecretString>> {
        if let Some(path) = self.secret_files.get(name) {
            return read_secret(path).map(Some);
        }
        if let Some(v) = env(name) {
            return Ok(Some(SecretString::from(v)));
        }
        if let Some(path) = self.config_value(name, "_file")? {
            return read_secret(Path::new(&path)).map(Some);
        }
        Ok(self
            .config_value(name, "")?
            .filter(|v| !v.trim().is_empty())
            .map(SecretString::from))
    }

    /// A secret that must be given.
    pub(crate) fn require_secret(&self, name: &str) -> anyhow::Result<SecretString> {
        self.secret(name)?.ok_or_else(|| missing(name, true))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn missing(name: &str, secret: bool) -> anyhow::Error {
    let (vendor, key) = Settings::config_key(name);
    let flag = if secret {
        format!(", --{vendor}-{}-file,", key.replace('_', "-"))
    } else {
        String::new()
    };
    anyhow!(
        "{name} is not set: set it in the environment{flag} or as `{key}` in the [{vendor}] table \
         of the config file ({}); or try the command with --sim",
        default_config_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "bulk/config.toml".into())
    )
}

fn read_table(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("the config file {} is not valid TOML", path.display()))
}

/// A secret from a file, without its trailing newline. Errors name the file, never its content.
fn read_secret(path: &Path) -> anyhow::Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the secret file {}", path.display()))?;
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.trim().is_empty() {
        bail!("the secret file {} is empty", path.display());
    }
    Ok(SecretString::from(secret))
}
