//! `hashi plugins list`: the plugins this `hashi` can load, their versions, ABI and capabilities.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use hashi_plugin_host::{Registry, default_dirs};

/// Where plugins come from, for every command that can use one.
#[derive(Args, Clone, Debug, Default)]
pub struct PluginArgs {
    /// A plugin library to load (repeatable). Plugins are also found in $HASHI_PLUGIN_PATH, in `plugins/` beside
    /// the executable and beside the executable itself (files named libhashi_plugin_*.so).
    #[arg(long = "plugin", value_name = "LIB")]
    pub plugins: Vec<PathBuf>,
}

impl PluginArgs {
    /// Loads the named plugins (failing on any error) and discovers the others.
    pub fn registry(&self) -> Result<Registry> {
        Ok(Registry::discover(&self.plugins, &default_dirs())?)
    }
}

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// List loadable plugins (and the libraries that were refused, with the reason).
    List {
        #[command(flatten)]
        plugins: PluginArgs,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: PluginsCommand) -> Result<()> {
    match cmd {
        PluginsCommand::List { plugins, json } => {
            let reg = plugins.registry()?;
            let infos: Vec<_> = reg.plugins().iter().map(|p| p.info().clone()).collect();
            let refused: Vec<String> = reg.refused().iter().map(ToString::to_string).collect();
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"plugins": infos, "refused": refused}))?
                )?;
                return Ok(());
            }
            outln!("{:<12} {:<8} {:<5} {:<22} path", "name", "version", "abi", "capabilities")?;
            for i in &infos {
                let mut caps = i.capabilities.join("+");
                if !i.export_targets.is_empty() {
                    caps = format!("{caps} ({})", i.export_targets.join(","));
                }
                outln!("{:<12} {:<8} {:<5} {:<22} {}", i.name, i.version, i.abi, caps, i.path.display())?;
                outln!("{:12} {}", "", i.description)?;
                if !i.same_compiler {
                    outln!("{:12} built by {} (only C types cross; fine)", "", i.canary)?;
                }
            }
            if infos.is_empty() {
                outln!("(no plugins found)")?;
            }
            for r in &refused {
                outln!("refused: {r}")?;
            }
            Ok(())
        }
    }
}
