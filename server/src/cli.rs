//! The `opsdeck` command line.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use opsdeck_wire::Role;

use crate::config::{LogFormat, Settings, SettingsArgs};
use crate::db::{self, Database};

#[derive(Debug, Parser)]
#[command(
    name = "opsdeck",
    version,
    about = "Opsdeck: your operations handbook as a control panel.",
    long_about = "Opsdeck: your operations handbook as a control panel.\n\n\
    Every setting can be given as a flag, as its environment variable, or in the TOML file named by \
    OPSDECK_CONFIG (flags win over the environment, which wins over the file). Without DATABASE_URL, \
    Opsdeck runs its own PostgreSQL cluster in OPSDECK_DATA_DIR."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the panel (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage user accounts. Passwords are read from standard input, never from arguments.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Validate the configuration and print it (secrets hidden).
    CheckConfig,
    /// Import into the inventory.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Print the whole inventory as YAML (config as code).
    Export,
    /// Secrets at rest (see docs/security/secrets.md).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seal every stored secret with a new key, in one transaction. Stop
    /// every Opsdeck replica first. With the key file, the new key replaces
    /// `<data_dir>/secret.key` and the old one is kept as
    /// `secret.key.<id>.bak` (it opens database backups taken before);
    /// with OPSDECK_SECRET_KEY the new key is printed once: set it before
    /// the next start.
    Rotate,
}

// Parsed once per process: the size of one variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a compose project as `docker compose` loads it: the files
    /// merged in order, `include`, `extends`, profiles, interpolation from
    /// the env files and this process's environment (which wins, as in
    /// compose). Services, images, ports, volumes, labels and depends_on;
    /// re-imports keep fields edited by hand. Services outside the active
    /// profiles are listed, not imported. The health checks the import
    /// proposes are created with it (docs/import/checks.md); re-imports
    /// never duplicate a check.
    ///
    /// `opsdeck import compose -f a.yml -f b.yml --env-file .env --profile gpu`
    Compose {
        /// One compose file (`-` for standard input); same as one `-f`.
        file: Option<std::path::PathBuf>,
        /// Compose files, in order [default: compose.yaml (or compose.yml,
        /// docker-compose.yml, docker-compose.yaml) and its override file
        /// in the project directory].
        #[arg(short = 'f', long = "file")]
        files: Vec<std::path::PathBuf>,
        /// Env files for interpolation, in order [default: .env in the
        /// project directory].
        #[arg(long = "env-file")]
        env_files: Vec<std::path::PathBuf>,
        /// Active profiles [default: COMPOSE_PROFILES].
        #[arg(long = "profile")]
        profiles: Vec<String>,
        /// The project directory [default: the first file's directory].
        #[arg(long)]
        project_directory: Option<std::path::PathBuf>,
        /// Compose project name [default: as compose: COMPOSE_PROJECT_NAME,
        /// the files' `name`, the directory name].
        #[arg(long)]
        project: Option<String>,
        /// Engine the containers run on [default: any engine].
        #[arg(long)]
        engine: Option<String>,
        /// Show the changes without applying them.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan as JSON (the API's `ImportPlan`).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        checks: CheckFlags,
    },
    /// Replace the whole inventory with a YAML document (from `opsdeck export`).
    Inventory {
        file: std::path::PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
}

/// The checks `opsdeck import compose` creates with the services: the
/// proposals of docs/import/checks.md (a container check per service, HTTP,
/// TLS, PostgreSQL, MariaDB/MySQL and Redis checks where the file says so),
/// those that need no password by default. Database checks that need a
/// password are listed as skipped unless the passwords file names them.
#[derive(Debug, clap::Args)]
pub struct CheckFlags {
    /// Create no checks (the services only).
    #[arg(long)]
    pub no_checks: bool,
    /// Leave out one proposed check by its key (`redis/redis`,
    /// `npm/http/8080`); repeatable.
    #[arg(long = "skip-check", value_name = "KEY")]
    pub skip_checks: Vec<String>,
    /// Passwords of proposed database checks: a file of `KEY=VALUE` lines
    /// (`db/postgres=…`; blank lines and `#` comments ignored). Never on
    /// the command line, where `ps` shows it. Stored sealed.
    #[arg(long, value_name = "FILE")]
    pub check_passwords_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (password from stdin).
    Add {
        username: String,
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Set a user's password (from stdin); ends the user's sessions.
    Passwd { username: String },
    /// Disable a user; ends the user's sessions.
    Disable { username: String },
    /// List users.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain and its signed checkpoint
    /// (`audit-checkpoint.json` in OPSDECK_DATA_DIR, key in OPSDECK_AUDIT_KEY
    /// or `audit-checkpoint.key` there); exits 1 when an entry was changed or
    /// removed, the newest entries were cut off after the checkpoint, or the
    /// chain was re-hashed.
    Verify {
        /// Fail when there is no checkpoint file (instead of checking the
        /// chain alone).
        #[arg(long)]
        require_checkpoint: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::resolve(&cli.settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("opsdeck: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("opsdeck: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("opsdeck: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPSDECK_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => crate::serve::run(settings).await.map(|_| ExitCode::SUCCESS),
        Command::CheckConfig => check_config(&settings),
        command => {
            let database = Database::open(&settings).await?;
            let result = with_database(command, &database, &settings).await;
            database.close().await;
            result
        }
    }
}

async fn with_database(
    command: Command,
    database: &Database,
    settings: &Settings,
) -> anyhow::Result<ExitCode> {
    let pool = &database.pool;
    match command {
        Command::Migrate => {
            db::migrate(pool).await?;
            println!("migrations applied");
        }
        Command::User { command } => {
            db::migrate(pool).await?;
            match command {
                UserCommand::Add {
                    username,
                    role,
                    display_name,
                } => {
                    let password = read_password("Password for the new user: ")?;
                    let id = crate::users::cli_add(
                        pool,
                        &username,
                        role.into(),
                        display_name.as_deref(),
                        &password,
                    )
                    .await?;
                    println!("added user {username} (id {id})");
                }
                UserCommand::Passwd { username } => {
                    let password = read_password(&format!("New password for {username}: "))?;
                    crate::users::cli_passwd(pool, &username, &password).await?;
                    println!("password of {username} changed; their sessions ended");
                }
                UserCommand::Disable { username } => {
                    let ended = crate::users::cli_disable(pool, &username).await?;
                    println!("disabled {username}; {ended} session(s) ended");
                }
                UserCommand::List => {
                    println!(
                        "{:<24} {:<9} {:<9} DISPLAY NAME",
                        "USERNAME", "ROLE", "STATE"
                    );
                    for u in crate::users::cli_list(pool).await? {
                        let state = if u.disabled { "disabled" } else { "active" };
                        println!(
                            "{:<24} {:<9} {:<9} {}",
                            u.username,
                            u.role.as_str(),
                            state,
                            u.display_name
                        );
                    }
                }
            }
        }
        Command::Import { command } => {
            db::migrate(pool).await?;
            return import(pool, settings, command).await;
        }
        Command::Export => {
            db::migrate(pool).await?;
            let mut conn = pool.acquire().await?;
            print!("{}", crate::inventory::plan::export(&mut conn).await?);
        }
        Command::Audit {
            command: AuditCommand::Verify { require_checkpoint },
        } => {
            let place = crate::audit::checkpoint::Place::new(&settings.data_dir);
            let (report, note) =
                crate::audit::checkpoint::verify(pool, &place, require_checkpoint).await?;
            if report.ok {
                println!("audit log intact: {} entries verified", report.checked);
                if let Some(note) = note {
                    println!("{note}");
                }
            } else {
                println!(
                    "AUDIT LOG TAMPERED: {} ({} entries verified before it)",
                    report.problem.unwrap_or_default(),
                    report.checked
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Secrets {
            command: SecretsCommand::Rotate,
        } => {
            db::migrate(pool).await?;
            let r = crate::secrets::rotate::rotate(pool, settings).await?;
            println!(
                "secrets re-sealed: {} value(s), key {} -> {}",
                r.values, r.old_id, r.new_id
            );
            if let (Some(file), Some(backup)) = (&r.key_file, &r.backup) {
                println!(
                    "new key file {}; the old key is kept as {} (delete it once no database backup needs it)",
                    file.display(),
                    backup.display()
                );
            }
            if let Some(text) = &r.new_key_text {
                println!("set OPSDECK_SECRET_KEY to the new key before the next start:\n{text}");
            }
        }
        Command::Serve | Command::CheckConfig => unreachable!("handled in run"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one line from stdin; prompts without echo on a terminal.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        bail!("no password given on standard input");
    }
    Ok(password)
}

fn check_config(s: &Settings) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    println!("listen          = {}", s.listen);
    println!("data_dir        = {}", s.data_dir.display());
    println!(
        "database        = {}",
        if s.database_url.is_some() {
            "DATABASE_URL (hidden)"
        } else {
            "embedded cluster in data_dir"
        }
    );
    println!(
        "docker_host     = {}",
        s.docker_host
            .as_deref()
            .unwrap_or("unix:///var/run/docker.sock (default)")
    );
    println!(
        "admin_password  = {}",
        if s.admin_password.is_some() {
            "set (hidden)"
        } else {
            "not set (random on first start)"
        }
    );
    println!("web_root        = {}", s.web_root.display());
    println!(
        "public_origin   = {}",
        s.public_origin.as_deref().unwrap_or("-")
    );
    println!("secure_cookies  = {}", s.secure_cookies);
    println!(
        "trusted_proxies = {}",
        s.trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    println!(
        "allowed_hosts   = {}",
        s.allowed_hosts
            .as_ref()
            .map_or("(any)".to_owned(), |h| h.join(","))
    );
    println!(
        "rate_limits     = anonymous {}/min, login {}/min, heartbeat {}/min",
        s.rate_limits.anonymous, s.rate_limits.login, s.rate_limits.heartbeat
    );
    println!("session_idle    = {} min", s.session_idle.as_secs() / 60);
    println!("session_max     = {} h", s.session_max.as_secs() / 3600);
    println!("log_format      = {:?}", s.log_format);
    println!(
        "metrics         = {}",
        match (&s.metrics_listen, &s.metrics_token) {
            (Some(a), Some(_)) => format!("{a} (no auth), and /metrics with the token (hidden)"),
            (Some(a), None) => format!("{a} (no auth)"),
            (None, Some(_)) => "/metrics with the token (hidden)".to_owned(),
            (None, None) => "off (/metrics answers 404)".to_owned(),
        }
    );
    println!("read_only       = {}", s.read_only);
    if !s.web_root.join("index.html").is_file() {
        problems.push(format!(
            "web_root {} has no index.html (build the SPA: make frontend)",
            s.web_root.display()
        ));
    }
    if let Some(p) = &s.admin_password {
        if let Err(e) = crate::auth::password::check_policy(p.expose(), "admin") {
            problems.push(format!("OPSDECK_ADMIN_PASSWORD: {e}"));
        }
    }
    if problems.is_empty() {
        println!("configuration OK");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("problem: {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}

fn read_input(file: &std::path::Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

/// Reads a compose project from disk (see `compose::sources_from_disk`) and
/// loads it; this process's environment takes part in interpolation, as
/// in `docker compose`. A lone `-` reads one file from standard input.
fn load_compose_files(
    file: Option<&std::path::Path>,
    files: &[std::path::PathBuf],
    env_files: &[std::path::PathBuf],
    profiles: &[String],
    project_directory: &Option<std::path::PathBuf>,
) -> anyhow::Result<crate::inventory::compose::Loaded> {
    use crate::inventory::compose;
    let environment = std::env::vars().collect();
    let mut all: Vec<std::path::PathBuf> = file.map(|f| f.to_path_buf()).into_iter().collect();
    all.extend(files.iter().cloned());
    let sources = if all.len() == 1 && all[0].as_os_str() == "-" {
        compose::Sources {
            files: vec![("compose.yaml".to_owned(), read_input(&all[0])?)],
            profiles: profiles.to_vec(),
            environment,
            ..compose::Sources::default()
        }
    } else {
        let project = compose::DiskProject {
            files: all,
            env_files: env_files.to_vec(),
            profiles: profiles.to_vec(),
            project_directory: project_directory.clone(),
        };
        compose::sources_from_disk(&project, environment).map_err(|e| anyhow::anyhow!("{e}"))?
    };
    compose::load(&sources).map_err(|e| anyhow::anyhow!("compose file: {e}"))
}

/// `opsdeck import compose|inventory`: the same plan and apply as the API,
/// audited as the system actor `cli`.
async fn import(
    pool: &sqlx::PgPool,
    settings: &Settings,
    command: ImportCommand,
) -> anyhow::Result<ExitCode> {
    use crate::inventory::plan;
    let (desired, dry_run) = match &command {
        ImportCommand::Compose {
            file,
            files,
            env_files,
            profiles,
            project_directory,
            project,
            engine,
            dry_run,
            json,
            checks,
        } => {
            let loaded = load_compose_files(
                file.as_deref(),
                files,
                env_files,
                profiles,
                project_directory,
            )?;
            let (project, source) = plan::compose_project(project.as_deref(), &loaded)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let input = ComposeInput {
                loaded,
                project,
                project_source: source,
                engine: engine.clone(),
                dry_run: *dry_run,
                json: *json,
            };
            return import_compose_checked(pool, settings, input, checks).await;
        }
        ImportCommand::Inventory { file, dry_run } => {
            let text = read_input(file)?;
            let doc = crate::inventory::yaml::parse(&text)
                .map_err(|e| anyhow::anyhow!("inventory file: {e}"))?;
            let desired = plan::desired_from_yaml(&doc).map_err(|e| anyhow::anyhow!("{e}"))?;
            (desired, *dry_run)
        }
    };
    let result = plan::run_import(
        pool,
        desired,
        !dry_run,
        crate::audit::Actor::system("cli"),
        "inventory.yaml",
        None,
        None,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    print_changes(&result);
    println!(
        "{}",
        if result.applied {
            "applied"
        } else {
            "dry run: nothing changed"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// A loaded compose project and what to do with it.
struct ComposeInput {
    loaded: crate::inventory::compose::Loaded,
    project: String,
    project_source: &'static str,
    engine: Option<String>,
    dry_run: bool,
    json: bool,
}

/// One line per service of a plan, its field changes indented.
fn print_changes(result: &opsdeck_wire::ImportPlan) {
    if let Some(p) = &result.project {
        if !result.files.is_empty() {
            let from = result.project_source.as_deref().unwrap_or("given");
            println!(
                "project {p} (from {from}); files: {}",
                result.files.join(", ")
            );
        }
    }
    for i in &result.inactive {
        println!(
            "  {} (inactive: profiles {})",
            i.name,
            i.profiles.join(", ")
        );
    }
    for c in &result.changes {
        let mark = match c.kind {
            opsdeck_wire::ChangeKind::Add => "+",
            opsdeck_wire::ChangeKind::Update => "~",
            opsdeck_wire::ChangeKind::Remove => "-",
            opsdeck_wire::ChangeKind::Unchanged => "=",
        };
        println!("{mark} {}", c.service);
        for f in &c.fields {
            println!("    {}: {:?} -> {:?}", f.field, f.old, f.new);
        }
        if !c.guessed.is_empty() {
            println!("    guessed: {}", c.guessed.join(", "));
        }
        if !c.kept_manual.is_empty() {
            println!("    kept (edited by hand): {}", c.kept_manual.join(", "));
        }
    }
}

/// `opsdeck import compose` with its proposed checks: the same plan, checks
/// and single transaction as the API (`onboard`), audited as `cli`; prints
/// the plan and each proposal (`[x]` created, `[ ]` not, `[=]` the service
/// already has one of that kind).
async fn import_compose_checked(
    pool: &sqlx::PgPool,
    settings: &Settings,
    input: ComposeInput,
    flags: &CheckFlags,
) -> anyhow::Result<ExitCode> {
    let ComposeInput {
        loaded,
        project,
        project_source,
        engine,
        dry_run,
        json,
    } = input;
    let passwords = match &flags.check_passwords_file {
        Some(path) => read_passwords_file(path)?,
        None => Default::default(),
    };
    if !passwords.is_empty() && !dry_run {
        // Check passwords are sealed: the secrets key as `serve` loads it.
        crate::secrets::startup::start(pool, settings)
            .await
            .context("secrets at rest")?;
    }
    let done = crate::onboard::import_compose(
        pool,
        crate::onboard::ComposeImport {
            loaded: &loaded,
            via: "compose",
            project,
            project_source: Some(project_source.to_owned()),
            engine,
            apply: !dry_run,
            checks: flags.no_checks.then(Vec::new),
            passwords,
            unticked: flags.skip_checks.clone(),
            allow_link_local: settings.checks_allow_link_local,
        },
        crate::audit::Actor::system("cli"),
        None,
        None,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan = done.plan;
    // A running server schedules the new checks when the notification arrives.
    for id in &done.check_ids {
        crate::fanout::notify(pool, crate::fanout::Change::Check(*id)).await;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_changes(&plan);
    if !plan.checks.is_empty() {
        println!("checks:");
    }
    for c in &plan.checks {
        let mark = match (c.exists, c.selected) {
            (true, _) => "[=]",
            (_, true) => "[x]",
            _ => "[ ]",
        };
        let note = if c.needs_password && !c.selected && !c.exists {
            "  (skipped: needs a password, see --check-passwords-file)"
        } else {
            ""
        };
        println!("  {mark} {:<28} {}{note}", c.key, c.name);
    }
    println!(
        "{}",
        if plan.applied {
            "applied"
        } else {
            "dry run: nothing changed"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `KEY=VALUE` lines; blank lines and `#` comments skipped.
fn read_passwords_file(
    path: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = std::collections::BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            bail!("{}:{}: expected KEY=VALUE", path.display(), n + 1);
        };
        out.insert(k.trim().to_owned(), v.to_owned());
    }
    Ok(out)
}
