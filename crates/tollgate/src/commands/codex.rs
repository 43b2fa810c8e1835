//! `tollgate codex`: the Codex CLI configuration that points Codex at this gateway, printed
//! or merged into Codex's `config.toml`.
//!
//! Codex takes a custom provider from `[model_providers.<id>]` and reads its key from the
//! environment variable that `env_key` names, so the key never goes into the file: it is
//! printed as a line that exports it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use tollgate_config::Config;
use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

use super::claude_code::{client_key, gateway_url, ps_quote, sh_quote};
use crate::cli::{CodexArgs, ShellKind};

/// The provider id in `model_providers` and in `model_provider`.
pub const PROVIDER: &str = "tollgate";
/// The variable Codex reads the key from.
pub const KEY_VARIABLE: &str = "TOLLGATE_API_KEY";

/// What goes into `config.toml`: the top-level keys, then the provider table's keys.
struct Settings {
    top: Vec<(&'static str, Value)>,
    provider: Vec<(&'static str, Value)>,
}

fn settings(config: &Config, a: &CodexArgs) -> Settings {
    let base = gateway_url(config, a.base_url.as_deref());
    // Codex appends `/responses` to `base_url`; accept a URL given with `/v1` already.
    let base_url = if base.ends_with("/v1") { base } else { format!("{base}/v1") };
    Settings {
        top: vec![("model", a.model.as_str().into()), ("model_provider", PROVIDER.into())],
        provider: vec![
            ("name", PROVIDER.into()),
            ("base_url", base_url.into()),
            ("env_key", KEY_VARIABLE.into()),
            ("wire_api", "responses".into()),
            // tollgate serves the Responses API over HTTP streams only.
            ("supports_websockets", false.into()),
        ],
    }
}

pub fn run(config: &Config, a: &CodexArgs) -> anyhow::Result<ExitCode> {
    let key = client_key(config, a.key.as_deref())?;
    let settings = settings(config, a);
    let export = match a.shell {
        ShellKind::Bash | ShellKind::Zsh => format!("export {KEY_VARIABLE}={}\n", sh_quote(&key)),
        ShellKind::Powershell => format!("$env:{KEY_VARIABLE} = {}\n", ps_quote(&key)),
    };
    match &a.write {
        Some(path) => {
            let path = match path {
                Some(p) => p.clone(),
                None => default_config_path()?,
            };
            let text = read_config(&path)?;
            let merged = merge(&text, &settings)
                .map_err(|e| anyhow::anyhow!("{} {e}; left unchanged", path.display()))?;
            write_atomically(&path, &merged)?;
            // The export line alone on stdout, so `eval "$(tollgate codex … --write)"` sets it.
            let note = format!(
                "wrote model, model_provider and [model_providers.{PROVIDER}] to {}\n\
                 Codex reads the key from {KEY_VARIABLE}; set it where codex runs:\n",
                path.display()
            );
            std::io::stderr().write_all(note.as_bytes())?;
            std::io::stdout().write_all(export.as_bytes())?;
        }
        None => {
            // The TOML alone on stdout, so it can be added to a config.toml as it is; the key
            // is not part of it.
            let block = merge("", &settings).map_err(anyhow::Error::msg)?;
            let out = format!(
                "# In $CODEX_HOME/config.toml (default ~/.codex/config.toml), or run with --write:\n{block}"
            );
            std::io::stdout().write_all(out.as_bytes())?;
            let note = format!(
                "Codex reads the key from {KEY_VARIABLE}, not from config.toml; set it where codex runs:\n{export}"
            );
            std::io::stderr().write_all(note.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `$CODEX_HOME/config.toml`, else `~/.codex/config.toml`, where Codex looks.
fn default_config_path() -> anyhow::Result<PathBuf> {
    if let Some(home) = std::env::var_os("CODEX_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home).join("config.toml"));
    }
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .context("cannot find the home directory; set CODEX_HOME or pass a path to --write")?;
    Ok(PathBuf::from(home).join(".codex").join("config.toml"))
}

/// The file's text; empty when it does not exist yet.
fn read_config(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// `text` with the settings merged in: only `model`, `model_provider` and the keys of
/// `[model_providers.tollgate]` are set; every other key, comment and layout is kept, and
/// so are other keys of the tollgate provider table (retries, headers). The error says why
/// the text cannot take them, as a predicate of the file: "is not valid TOML (…)".
fn merge(text: &str, settings: &Settings) -> Result<String, String> {
    let mut doc: DocumentMut =
        text.parse().map_err(|e| format!("is not valid TOML ({})", one_line(text, &e)))?;
    let root = doc.as_table_mut();
    for (key, value) in &settings.top {
        set(root, key, value.clone(), key)?;
    }
    let providers = root.entry("model_providers").or_insert_with(|| {
        let mut t = Table::new();
        // No bare `[model_providers]` header: only `[model_providers.tollgate]` is written.
        t.set_implicit(true);
        Item::Table(t)
    });
    let providers = providers
        .as_table_like_mut()
        .ok_or_else(|| "has a `model_providers` that is not a table".to_owned())?;
    if providers.get(PROVIDER).is_none() {
        providers.insert(PROVIDER, Item::Table(Table::new()));
    }
    let shown = format!("model_providers.{PROVIDER}");
    let provider = providers
        .get_mut(PROVIDER)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| format!("has a `{shown}` that is not a table"))?;
    for (key, value) in &settings.provider {
        set(provider, key, value.clone(), &format!("{shown}.{key}"))?;
    }
    Ok(doc.to_string())
}

/// Sets `key` to `value`, keeping the comments and spacing around a value it replaces.
fn set(table: &mut dyn TableLike, key: &str, mut value: Value, shown: &str) -> Result<(), String> {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        Some(Item::None) | None => {
            table.insert(key, Item::Value(value));
        }
        Some(_) => return Err(format!("has a table `{shown}` where a value belongs")),
    }
    Ok(())
}

/// toml_edit's error on `text` as one line: `line 3, column 7: invalid key`.
fn one_line(text: &str, e: &toml_edit::TomlError) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let (line, column) = position(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

/// The 1-based line and column of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    (line, column)
}

/// Writes beside the target and renames over it, so a crash never leaves half a file.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tollgate-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample() -> Settings {
        Settings {
            top: vec![("model", "gpt-5.4".into()), ("model_provider", PROVIDER.into())],
            provider: vec![("name", PROVIDER.into()), ("wire_api", "responses".into())],
        }
    }

    #[test]
    fn a_new_file_gets_the_keys_and_only_the_provider_header() {
        let text = merge("", &sample()).unwrap();
        assert_eq!(
            text,
            "model = \"gpt-5.4\"\nmodel_provider = \"tollgate\"\n\n[model_providers.tollgate]\nname = \"tollgate\"\nwire_api = \"responses\"\n"
        );
    }

    #[test]
    fn replaced_values_keep_their_comments() {
        let before = "# top\nmodel = \"o3\" # the old one\n\n[model_providers.tollgate]\nname = \"x\" # named\nstream_max_retries = 0\n";
        let text = merge(before, &sample()).unwrap();
        assert!(text.contains("model = \"gpt-5.4\" # the old one"), "{text}");
        assert!(text.contains("name = \"tollgate\" # named"), "{text}");
        assert!(text.contains("stream_max_retries = 0"), "{text}");
        assert!(text.starts_with("# top\n"), "{text}");
    }

    #[test]
    fn dotted_and_inline_provider_tables_are_merged_in_place() {
        let text = merge("model_providers.other.name = \"o\"\n", &sample()).unwrap();
        let doc: DocumentMut = text.parse().unwrap();
        assert_eq!(doc["model_providers"]["other"]["name"].as_str(), Some("o"));
        assert_eq!(doc["model_providers"]["tollgate"]["wire_api"].as_str(), Some("responses"));
        let text = merge("model_providers = { other = { name = \"o\" } }\n", &sample()).unwrap();
        let doc: DocumentMut = text.parse().unwrap();
        assert_eq!(doc["model_providers"]["other"]["name"].as_str(), Some("o"));
        assert_eq!(doc["model_providers"]["tollgate"]["name"].as_str(), Some("tollgate"));
    }

    #[test]
    fn shapes_that_cannot_take_the_settings_are_refused() {
        let e = merge("model_providers = \"none\"\n", &sample()).unwrap_err();
        assert_eq!(e, "has a `model_providers` that is not a table");
        let e = merge("[model_providers]\ntollgate = 1\n", &sample()).unwrap_err();
        assert_eq!(e, "has a `model_providers.tollgate` that is not a table");
        let e = merge("[model]\nname = 1\n", &sample()).unwrap_err();
        assert_eq!(e, "has a table `model` where a value belongs");
        let e = merge("a = 1\nmodel = \n", &sample()).unwrap_err();
        assert!(e.starts_with("is not valid TOML (line 2, column 9: "), "{e}");
    }
}
