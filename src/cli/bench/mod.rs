//! `kaibiao bench …`: the performance targets of DESIGN §10, each measured
//! against a baseline taken in the same run on the same machine, and
//! reported as a ratio. Never timed tests: these are run by hand (and once,
//! small, by the test suite to keep them working).
//!
//! One file per target: [`seal`] (client sealing), [`ingest`] (one large
//! upload), [`submit`] (the last minute before a deadline), [`decrypt`]
//! (the opening's decryption), [`room`] (watchers of one room), [`scores`]
//! (durable score writes). [`platform`] builds their fixtures through the
//! platform itself (the sandbox, over HTTP); [`measure`] holds the
//! instruments (sizes, throughput, memory, baselines).

mod decrypt;
mod ingest;
mod measure;
mod platform;
mod room;
mod scores;
mod seal;
mod submit;

use std::path::PathBuf;

use clap::Subcommand;

pub use measure::parse_size;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Server ingest of one sealed bid vs `dd conv=fsync` of the same size;
    /// server memory growth during the upload.
    Ingest {
        /// Bytes of bid documents, e.g. 1GiB, 64MiB.
        #[arg(long, default_value = "1GiB")]
        size: String,
        /// Rounds of (dd, ingest); the disk of a virtual machine varies a
        /// lot from one second to the next, so the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Working directory (default: a temporary one under /tmp).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Client sealing throughput vs raw AES-256-GCM, SHA-256 and a file copy.
    Seal {
        #[arg(long, default_value = "1GiB")]
        size: String,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Durable score writes: experts' signed scores over HTTP, each
    /// answered only after its commit (SQLite, synchronous=FULL), vs one
    /// single-row commit per write on the same disk.
    Scores {
        /// Experts on the panel (each a separate client).
        #[arg(long, default_value_t = 7)]
        experts: usize,
        /// Qualified bids each expert scores.
        #[arg(long, default_value_t = 30)]
        bids: usize,
        /// Scored items per bid (the price item is computed, not scored).
        #[arg(long, default_value_t = 50)]
        items: usize,
        /// Requests in flight per expert.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The opening's decryption: sealed bids opened with the custodians'
    /// keys, exactly as the decryption job does, vs raw AES-256-GCM.
    Decrypt {
        #[arg(long, default_value_t = 50)]
        bids: usize,
        /// Bytes of documents in each bid, e.g. 100MB, 64MiB.
        #[arg(long, default_value = "100MB")]
        size: String,
        /// Decryption threads (0: one per core, the server's default).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Watchers in one opening room: time from the room sending an event to
    /// each watcher receiving it, server memory per connection, and the
    /// effect of one stalled watcher on everyone else.
    Room {
        #[arg(long, default_value_t = 10_000)]
        watchers: usize,
        #[arg(long, default_value_t = 100)]
        events: usize,
        /// Events per second.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The watcher process of `bench room` (not for direct use).
    #[command(hide = true)]
    RoomWatchers {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        section: String,
        #[arg(long)]
        watchers: usize,
        #[arg(long)]
        stalled: bool,
    },
    /// Many bidders submitting at once in the last minute before a deadline.
    Submit {
        #[arg(long, default_value_t = 500)]
        bids: usize,
        #[arg(long, default_value = "10MiB")]
        size: String,
        /// Seconds before the deadline at which everyone starts.
        #[arg(long, default_value_t = 60)]
        window: u64,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Seal { size, dir } => seal::bench_seal(parse_size(&size)?, dir),
        BenchCommand::Room {
            watchers,
            events,
            rate,
            dir,
        } => room::bench_room(watchers, events, rate, dir),
        BenchCommand::RoomWatchers {
            addr,
            section,
            watchers,
            stalled,
        } => room::room_watchers(addr, section, watchers, stalled),
        BenchCommand::Scores {
            experts,
            bids,
            items,
            concurrency,
            dir,
        } => scores::bench_scores(experts, bids, items, concurrency, dir),
        BenchCommand::Decrypt {
            bids,
            size,
            threads,
            dir,
        } => decrypt::bench_decrypt(bids, parse_size(&size)?, threads, dir),
        BenchCommand::Ingest { size, runs, dir } => {
            let size = parse_size(&size)?;
            actix_web::rt::System::new().block_on(ingest::bench_ingest(size, runs.max(1), dir))
        }
        BenchCommand::Submit {
            bids,
            size,
            window,
            dir,
        } => {
            let size = parse_size(&size)?;
            actix_web::rt::System::new().block_on(submit::bench_submit(bids, size, window, dir))
        }
    }
}
