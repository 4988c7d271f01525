//! The `skiff` command line: argument definitions and dispatch to one file
//! per subcommand. This is the binary's edge: errors become `anyhow` here
//! and an exit code in `main`. It must not hold queue logic.

mod admin;
mod agent;
mod bench;
mod consume;
mod group;
mod print;
mod produce;
mod queue;
mod topic;

use clap::{Parser, Subcommand};

/// Skiff: a message queue on object storage.
#[derive(Debug, Parser)]
#[command(name = "skiff", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by the commands that talk to an agent.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// The agent's URL.
    #[arg(
        long,
        env = "SKIFF_URL",
        default_value = "http://127.0.0.1:8470",
        global = true
    )]
    pub url: String,
    /// Print JSON for scripts instead of human-readable text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an agent (HTTP API on 127.0.0.1:8470, data in ./skiff-data by default).
    Agent(agent::AgentArgs),
    /// Create, list, describe, alter (retention), trim and delete topics.
    Topic {
        #[command(subcommand)]
        command: topic::TopicCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Produce records: one per line from stdin or --file.
    Produce(produce::ProduceArgs),
    /// Consume records and print them, one per line.
    Consume(consume::ConsumeArgs),
    /// Stream (consumer) groups: list, describe, reset offsets.
    Group {
        #[command(subcommand)]
        command: group::GroupCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Queue groups: create, receive, ack, nack, dead letters, redrive.
    Queue {
        #[command(subcommand)]
        command: queue::QueueCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Measure throughput, latency and store cost (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Operate the bucket directly, no agent needed: fsck, stats, gc.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
}

/// Run a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Agent(args) => agent::run(args).await,
        Command::Topic { command, remote } => topic::run(command, &remote).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Consume(args) => consume::run(args).await,
        Command::Bench(args) => bench::run_bench(args).await,
        Command::Group { command, remote } => group::run(command, &remote).await,
        Command::Queue { command, remote } => queue::run(command, &remote).await,
        Command::Admin { command } => admin::run(command).await,
    }
}
