//! `serve` and `keys create`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tunelake::serve::{Keys, ServeOptions, Server, bind, keys};

use super::args::{DEMO_PIPELINE, ServeFlags};

pub async fn serve(flags: ServeFlags) -> anyhow::Result<()> {
    let keys = match (&flags.keys, &flags.keys_toml) {
        (Some(path), _) => Keys::load(path)?,
        (None, Some(text)) => Keys::parse(text, "TUNELAKE_API_KEYS")?,
        (None, None) => Err(tunelake::Error::Keys {
            source_name: "--keys".into(),
            message: "give a keys file (--keys or TUNELAKE_API_KEYS_FILE) or TUNELAKE_API_KEYS; create one with `tunelake keys create`".into(),
        })?,
    };
    let server = Server::new(ServeOptions {
        pipeline: flags
            .pipeline
            .unwrap_or_else(|| PathBuf::from(DEMO_PIPELINE)),
        keys,
        request_timeout: Duration::from_secs(flags.request_timeout_s),
        body_limit: flags.body_limit,
    })
    .await?;
    let listener = bind(&flags.listen).await?;
    eprintln!(
        "tunelake serving on http://{} (Ctrl-C to stop)",
        listener.local_addr()?
    );
    server
        .run(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

pub fn create_key(
    name: &str,
    apps: Vec<String>,
    requests_per_minute: u32,
    file: &Path,
) -> anyhow::Result<()> {
    let (key, entry) = keys::create(name, apps, requests_per_minute)?;
    let text = keys::entry_toml(&entry)?;
    // The file with the new entry must still load: checked before anything is written.
    let before = std::fs::read_to_string(file).unwrap_or_default();
    Keys::parse(&format!("{before}\n{text}"), &file.display().to_string())?;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    writeln!(out, "{text}").with_context(|| format!("writing {}", file.display()))?;
    println!("{key}");
    eprintln!(
        "key `{name}` added to {} (only its hash is stored: keep the key above, it is not shown again)",
        file.display()
    );
    Ok(())
}
