//! The `leadboard` binary: parse the command line, load settings, run.

use clap::{Parser, Subcommand};
use leadboard::app::Application;
use leadboard::clock::SystemClock;
use leadboard::config::{Settings, Source};
use leadboard::reload::{Loader, Reloader};
use leadboard::{cli, local, telemetry};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "leadboard", version, about = "全员营销企业微信机器人")]
struct Cli {
    /// Configuration file (TOML). Without one, leadboard runs in local mode.
    #[arg(long, global = true, env = "LEADBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve,
    /// Send a text message to the running service as WeCom would, print the answer.
    Send {
        /// The sender's WeCom userid.
        #[arg(long = "as")]
        as_user: String,
        /// The service's base URL (default: the running local service, or server.listen).
        #[arg(long)]
        url: Option<String>,
        /// The message text.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Press a button of a card the bot sent (local mode), as WeCom would report it.
    Press {
        /// Who presses: the WeCom userid the card was sent to.
        #[arg(long = "as")]
        as_user: String,
        /// The service's base URL (default: the running local service).
        #[arg(long)]
        url: Option<String>,
        /// The card: a record number (#12 or 12) or a contest (for 终审).
        target: String,
        /// The button's text: 确认, 驳回, 在岗, 离职 or 终审.
        button: String,
    },
    /// The local demo (local mode only).
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Check the configuration and list every problem.
    CheckConfig,
    /// Make the running service read its configuration file again (as SIGHUP does), and print
    /// what changed; a file with problems is refused and the service keeps its configuration.
    Reload,
    /// Copy the database consistently while the service runs, and verify the copy.
    Backup {
        /// The backup file (default: leadboard-backup-YYYYMMDD-HHMMSS.db next to the database).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Copy an SQLite database into an empty PostgreSQL database (for replicas), and verify the
    /// copy table by table.
    MigrateToPostgres {
        /// The SQLite database file (default: the one database.url of --config names). It is only
        /// read, in one consistent snapshot.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// The empty PostgreSQL database: postgres://USER@HOST[:PORT]/DATABASE (the password
        /// from PGPASSWORD or ~/.pgpass, rather than in the URL).
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Write the monthly settlement (CSV and XLSX) for finance.
    Settle {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// Where to write settlement-YYYY-MM.csv and .xlsx (default: exports/ beside the database,
        /// data/exports in local mode).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Close the month (mark it paid): its files never change afterwards, and later changes
        /// become adjustments (补发 / 扣回) in the first open month.
        #[arg(long)]
        close: bool,
        /// Who closes the month (default: the operating-system user, $USER or $USERNAME).
        #[arg(long, requires = "close")]
        by: Option<String>,
        /// Close although records of the month are still pending (they are paid later as 补发).
        #[arg(long, requires = "close")]
        force: bool,
    },
    /// Sync the directory now (from WeCom with directory.source = "wecom") and print what changed.
    SyncDirectory {
        /// When a sync is already running, wait this many seconds at most for it to finish.
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        wait: u64,
    },
    /// Scheduled jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Close the demo's short contest (演示快赛) now; takes effect when the service restarts.
    Cutoff,
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Every job with its schedule, last and next run.
    List,
    /// Run one job now against the configured database.
    Run {
        /// daily_leaderboard, onjob_check, reminders, contest_cutoff, directory_sync or inbox_prune.
        name: String,
    },
}

fn load(config: Option<&PathBuf>) -> Result<Settings, ExitCode> {
    let loaded = match config {
        Some(path) => Settings::load(Source::File(path)),
        // Checked before local mode writes its secrets: a refusal leaves nothing behind.
        None => Settings::refuse_wecom_environment_without_file().and_then(|()| local::settings()),
    };
    loaded.map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("错误：无法启动运行时：{e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cli));
    // Tasks abandoned at shutdown are dropped here; a blocking call that hangs (a DNS
    // lookup, say) must not keep the process alive past the grace period.
    runtime.shutdown_timeout(LEFTOVER_WAIT);
    code
}

/// How long exit waits for blocking threads still running after the command finished.
const LEFTOVER_WAIT: Duration = Duration::from_millis(200);

async fn run(cli: Cli) -> ExitCode {
    if let Command::Reload = cli.command {
        // The service reads the file itself (with its own environment and secrets).
        return cli::reload::run(cli.config.as_deref()).await;
    }
    if let Command::MigrateToPostgres { from, to } = &cli.command {
        // Reads the configuration only for the source's path: no local mode, no secrets.
        return cli::migrate::run(cli.config.as_deref(), from.as_deref(), to).await;
    }
    let settings = match load(cli.config.as_ref()) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    telemetry::init(settings.server.log_format);
    let result = match cli.command {
        Command::Serve => serve(settings, cli.config.clone()).await,
        Command::Send { as_user, url, text } => cli::send::run(&settings, &as_user, &text.join(" "), url).await,
        Command::Press { as_user, url, target, button } => {
            cli::press::run(&settings, &as_user, &target, &button, url).await
        }
        Command::Demo { command: DemoCommand::Cutoff } => cli::demo::cutoff(&settings),
        Command::Backup { out } => cli::backup::run(&settings, out).await,
        Command::Settle { month, out, close, by, force } => {
            let close = close.then_some(cli::settle::Close { by, force });
            cli::settle::run(settings, &month, out, close).await
        }
        Command::SyncDirectory { wait } => cli::directory::run(settings, Duration::from_secs(wait)).await,
        Command::Jobs { command: JobsCommand::List } => cli::jobs::list(settings).await,
        Command::Jobs { command: JobsCommand::Run { name } } => cli::jobs::run(settings, &name).await,
        Command::Reload | Command::MigrateToPostgres { .. } => unreachable!("handled before the settings load"),
        Command::CheckConfig => {
            cli::line(format!("配置正确{}。", if settings.local_mode { "（本地模式）" } else { "" }));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_busy(&e) => {
            eprintln!(
                "错误：数据库正忙：服务正在写入，本命令等到 database.busy_timeout_ms 仍未轮到，未做任何更改。\
                 请稍后重试，或在服务空闲时运行。（{e:#}）"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("错误：{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether a command failed because another process (the service) held the database's
/// write lock past the busy timeout (SQLite's `SQLITE_BUSY`, with its extended codes),
/// or a row or table past the lock timeout (PostgreSQL's `55P03`, lock_not_available).
fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().filter_map(|cause| cause.downcast_ref::<sqlx::Error>()).any(|e| match e {
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| code == "55P03" || code.parse::<i32>().is_ok_and(|c| c & 0xff == 5))
        }
        _ => false,
    })
}

async fn serve(settings: Settings, config: Option<PathBuf>) -> anyhow::Result<()> {
    let local_mode = settings.local_mode;
    let source = match &config {
        Some(path) => path.display().to_string(),
        None => "本地模式".to_owned(),
    };
    let reload: Loader = Arc::new(move || match &config {
        Some(path) => Settings::load(Source::File(path)),
        None => local::settings(),
    });
    let app = Application::build(settings, Arc::new(SystemClock)).await?.reloadable(reload, source);
    // Signals are caught from here on: before anyone is told the service is up.
    let shutdown = CancellationToken::new();
    let signals = Signals::catch()?;
    tokio::spawn(handle_signals(signals, shutdown.clone(), app.reloader()));
    if local_mode {
        let url = format!("http://{}", app.local_addr());
        local::write_state(&local::data_dir(), &local::LocalState { url: url.clone() })?;
        eprintln!("本地模式已启动：{url}（企业微信接口由内置模拟器应答）");
        eprintln!("试试：leadboard send --as zhangwei 帮助");
        for (contest, url) in app.board_links().await? {
            eprintln!("「{contest}」电视看板：{url}");
        }
    }
    app.run(shutdown).await
}

/// What a signal asks for.
enum Signal {
    /// SIGINT or SIGTERM.
    Stop,
    /// SIGHUP.
    Reload,
}

/// SIGINT, SIGTERM and SIGHUP, registered when caught (not when first awaited).
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn catch() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Stop,
            _ = self.terminate.recv() => Signal::Stop,
            _ = self.hangup.recv() => Signal::Reload,
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn catch() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn recv(&mut self) -> Signal {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Stop
    }
}

/// Cancels on SIGINT or SIGTERM; reloads the configuration on SIGHUP (the outcome is
/// logged: what changed, or every problem).
async fn handle_signals(mut signals: Signals, shutdown: CancellationToken, reloader: Option<Reloader>) {
    loop {
        match signals.recv().await {
            Signal::Stop => break,
            Signal::Reload => {
                tracing::info!("reload requested (SIGHUP)");
                if let Some(reloader) = reloader.clone() {
                    // Logged by the reload; the signal loop stays responsive meanwhile.
                    tokio::spawn(async move { reloader.reload().await });
                }
            }
        }
    }
    // Cancel first: whoever reads this line knows that no new work starts.
    shutdown.cancel();
    tracing::info!("shutdown requested");
}
