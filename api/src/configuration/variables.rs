//! Every environment variable bozor and its scripts read, in one table: each subcommand's
//! `--help` lists the ones it reads, `.env.example` is rendered from it (a test keeps the file
//! equal), and a test fails when the code reads a `BOZOR_` variable this table lacks.

/// One variable.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// The default, as a person would write it ("unset" when there is none).
    pub default: &'static str,
    pub meaning: &'static str,
    /// Who reads it: subcommands of the binary (`up`, `serve`, ...), `*` for every one that
    /// connects to the database, `tests` or `dev` for the test suite and `./dev` only.
    pub read_by: &'static [&'static str],
    /// A flag that sets it (flags win over the environment).
    pub flag: Option<&'static str>,
}

/// Every subcommand that runs a role or reaches the database.
const ROLES: &[&str] = &["up", "serve", "project", "relay", "search-sync", "scheduler"];
const HTTP: &[&str] = &["up", "serve"];
const FANOUT: &[&str] = &["up", "serve", "project", "relay", "search-sync", "scheduler", "bench"];
const SEARCH: &[&str] = &["up", "serve", "search-sync", "rebuild", "bench"];
const AUTH: &[&str] = &["up", "serve", "token", "seed"];

const fn v(
    name: &'static str,
    default: &'static str,
    meaning: &'static str,
    read_by: &'static [&'static str],
) -> Variable {
    Variable { name, default, meaning, read_by, flag: None }
}

const fn f(
    name: &'static str,
    default: &'static str,
    meaning: &'static str,
    read_by: &'static [&'static str],
    flag: &'static str,
) -> Variable {
    Variable { name, default, meaning, read_by, flag: Some(flag) }
}

/// The table. Order: what a newcomer sets first.
pub const VARIABLES: &[Variable] = &[
    f(
        "BOZOR_DATABASE_URL",
        "postgres://postgres@127.0.0.1:55432/bozor",
        "the event store and read models (PostgreSQL)",
        &["*"],
        "--database-url",
    ),
    f(
        "BOZOR_HTTP_ADDR",
        "127.0.0.1:8080",
        "where the API listens (port 0: any free port); probe's default target",
        &["up", "serve", "probe"],
        "--http-addr",
    ),
    f(
        "BOZOR_ENV",
        "development",
        "production refuses development secrets, short JWT secrets and the console SMS sender, and adds HSTS",
        &["*"],
        "--env",
    ),
    f("BOZOR_LOG_FORMAT", "text", "json: one JSON object per log line, for log collectors", &["*"], "--log-format"),
    v("RUST_LOG", "info", "log filter (tracing's EnvFilter syntax)", &["*"]),
    f(
        "BOZOR_SHUTDOWN_TIMEOUT",
        "30s",
        "on SIGTERM or SIGINT, how long a role may take to finish in-flight work and commit its checkpoints",
        ROLES,
        "--shutdown-timeout",
    ),
    v(
        "BOZOR_STATUS_ADDR",
        "unset",
        "a worker role's own /healthz and /metrics (host:port)",
        &["project", "relay", "search-sync", "scheduler"],
    ),
    v(
        "BOZOR_METRICS_TOKEN",
        "unset",
        "set, /metrics answers only Authorization: Bearer <token>",
        &["up", "serve", "project", "relay", "search-sync", "scheduler"],
    ),
    v(
        "BOZOR_DB_POOL_MAX",
        "32",
        "connections in the request pool, 1 to 1000 (the read side's worker pool is 8)",
        &["*"],
    ),
    v("BOZOR_DB_POOL_WAIT_MS", "1000", "longest a request waits for a pooled connection, then 503 unavailable", HTTP),
    v("BOZOR_SNAPSHOT_EVERY", "100", "a stream is snapshotted every this many events", &["*"]),
    v("BOZOR_BODY_BYTES_MAX", "65536", "largest request body; larger ones get 413", HTTP),
    v("BOZOR_HTTP_WORKERS", "the number of cores", "HTTP worker threads (1 to 256)", HTTP),
    v("BOZOR_CORS_ORIGINS", "unset", "comma-separated origins browsers may call the API from", HTTP),
    v("BOZOR_TRUST_PROXY", "0", "proxies of ours in front of bozor, each appending to X-Forwarded-For", HTTP),
    f(
        "BOZOR_KAFKA_BROKERS",
        "unset",
        "Kafka bootstrap servers; set, the read side fans out through Kafka",
        FANOUT,
        "--kafka-brokers",
    ),
    v(
        "BOZOR_KAFKA_TOPIC_PREFIX",
        "bozor",
        "topics are <prefix>.<stream_type>, consumer groups <prefix>.projection.<name>",
        FANOUT,
    ),
    v("BOZOR_KAFKA_PARTITIONS", "4", "partitions of each topic the relay or a projector creates", FANOUT),
    v("BOZOR_KAFKA_FETCH_WAIT_MS", "100", "longest a consumer's fetch waits at the broker for records", FANOUT),
    v("BOZOR_KAFKA_FETCH_PARTITION_BYTES", "1048576", "most one fetch takes from a partition", FANOUT),
    v("BOZOR_KAFKA_DEBUG", "unset", "librdkafka debug contexts for the consumers (cgrp,fetch, ...)", FANOUT),
    f(
        "BOZOR_MEILI_URL",
        "unset",
        "Meilisearch; set, search goes there; unset, PostgreSQL serves search",
        SEARCH,
        "--meili-url",
    ),
    v("BOZOR_MEILI_KEY", "unset", "Meilisearch's master or an admin API key", SEARCH),
    v("BOZOR_MEILI_INDEX", "listings", "the Meilisearch index uid", SEARCH),
    v(
        "BOZOR_COMMANDS_AT_ONCE",
        "eight times the cores",
        "commands between their first read and their append at once per process; others wait their turn up to BOZOR_DB_POOL_WAIT_MS, then 503",
        HTTP,
    ),
    v(
        "BOZOR_SEARCHES_AT_ONCE",
        "twice the cores",
        "searches running at once per process; others wait up to 1 s, then 503",
        HTTP,
    ),
    v("BOZOR_SUGGEST_CACHE", "on", "off answers every autosuggest from the engine (benchmarks)", HTTP),
    v("BOZOR_LIST_PAGE_CACHE", "on", "off serves every listings page from the read model (benchmarks)", HTTP),
    v(
        "BOZOR_JWT_SECRET",
        "a published development secret",
        "signs access tokens (HS256) and keys login-code hashes; 32 bytes or more in production",
        AUTH,
    ),
    v(
        "BOZOR_MASTER_KEY",
        "a published development key",
        "32 bytes (base64 or 64 hex digits) wrapping game-account credentials' keys",
        AUTH,
    ),
    v("BOZOR_SMS", "console", "console logs login codes (development); eskiz sends them through Eskiz.uz", HTTP),
    v("BOZOR_ESKIZ_URL", "https://notify.eskiz.uz", "Eskiz's API", HTTP),
    v("BOZOR_ESKIZ_EMAIL", "unset", "the Eskiz account", HTTP),
    v("BOZOR_ESKIZ_PASSWORD", "unset", "the Eskiz account's password", HTTP),
    v("BOZOR_ESKIZ_FROM", "4546", "the sender name Eskiz approved", HTTP),
    v("BOZOR_RATE_AUTH_PER_IP", "20", "auth calls per minute per client address", HTTP),
    v("BOZOR_RATE_COMMANDS_PER_USER", "300", "commands per minute per user", HTTP),
    v("BOZOR_RATE_COMMANDS_PER_IP", "6000", "commands per minute per client address", HTTP),
    v("BOZOR_RATE_QUERIES_PER_IP", "12000", "queries (GETs under /v1) per minute per client address", HTTP),
    v("BOZOR_OTP_PER_PHONE_PER_HOUR", "5", "login codes sent to one number per hour per client address", HTTP),
    v("BOZOR_PAYME_MERCHANT_ID", "unset", "Payme's merchant id (checkout links); set with BOZOR_PAYME_KEY", HTTP),
    v("BOZOR_PAYME_KEY", "unset", "the key Payme's callbacks authenticate with (Paycom:<key>)", HTTP),
    v("BOZOR_CLICK_SERVICE_ID", "unset", "Click's service id; all three Click variables or none", HTTP),
    v("BOZOR_CLICK_MERCHANT_ID", "unset", "Click's merchant id", HTTP),
    v("BOZOR_CLICK_SECRET", "unset", "the secret Click signs its callbacks with", HTTP),
    v("BOZOR_WITHDRAW_MIN", "1000000", "the smallest withdrawal, tiyin (10 000 sum)", HTTP),
    v("BOZOR_WITHDRAW_DAILY_MAX", "1000000000", "the most one user asks to withdraw in a Tashkent day, tiyin", HTTP),
    v(
        "BOZOR_ORDER_UNPAID_TTL",
        "30m",
        "an order not paid for this long is cancelled by the scheduler",
        &["up", "scheduler"],
    ),
    v(
        "BOZOR_TEST_CLOCK_OFFSET_SECONDS",
        "0",
        "tests only: the scheduler's clock runs this far ahead; production refuses it",
        &["up", "scheduler"],
    ),
    v("BOZOR_FAULT", "unset", "tests only: a crash point where the process aborts once", &["tests"]),
    v("BOZOR_WRITE_FIXTURES", "unset", "tests: 1 rewrites the frozen event fixtures and .env.example", &["tests"]),
    v("BOZOR_TEST_ADMIN_URL", "set by ./dev test", "tests: a PostgreSQL role that may create databases", &["tests"]),
    v("BOZOR_TEST_KAFKA_BROKERS", "set by ./dev test", "tests: the Kafka broker the Kafka tests use", &["tests"]),
    v(
        "BOZOR_TEST_MEILI_URL",
        "unset",
        "tests: a Meilisearch to run the search conformance suite against as well",
        &["tests"],
    ),
    v("BOZOR_TEST_MEILI_KEY", "unset", "tests: that Meilisearch's key", &["tests"]),
    v(
        "BOZOR_BIN",
        "$CARGO_TARGET_DIR/debug/bozor, else target/debug/bozor",
        "tests and ./dev cluster: the bozor binary to run (an absolute path)",
        &["tests", "dev"],
    ),
    v(
        "BOZOR_TEST_CHROMIUM",
        "found on PATH",
        "tests: the Chromium binary the admin console's browser test drives",
        &["tests"],
    ),
    v("BOZOR_TEST_CHROMEDRIVER", "found on PATH", "tests: the chromedriver that drives that Chromium", &["tests"]),
    v("BOZOR_PG_PORT", "55432", "./dev: the port of its own PostgreSQL cluster", &["dev"]),
    v("BOZOR_KAFKA_PORT", "9092", "./dev: the port of its Apache Kafka (the controller takes the next)", &["dev"]),
    v("BOZOR_DEMO_LISTINGS", "2000", "./dev run: listings of the demo it seeds", &["dev"]),
    v(
        "BOZOR_CLUSTER_PORT",
        "8081",
        "./dev cluster: the first API's port (the second takes the next, worker roles' status from +10)",
        &["dev"],
    ),
    v("BOZOR_CLUSTER_REPLICAS", "1", "./dev cluster: processes of each worker role (2 gives each a standby)", &["dev"]),
    v(
        "BOZOR_CLUSTER_DIR",
        "/var/tmp/bozor-cluster-<uid>",
        "./dev cluster: where the roles' logs and pids go",
        &["dev"],
    ),
];

/// The variables `subcommand` reads, as its `--help` lists them.
pub fn read_by(subcommand: &str) -> impl Iterator<Item = &'static Variable> + '_ {
    VARIABLES.iter().filter(move |v| {
        v.read_by.contains(&subcommand)
            || (v.read_by.contains(&"*") && !["token", "help", "probe"].contains(&subcommand))
    })
}

/// The text after a subcommand's flags in its `--help`.
pub fn help_text(subcommand: &str) -> String {
    let mut out = String::from("Environment (flags win; see .env.example):\n");
    for v in read_by(subcommand) {
        let flag = v.flag.map_or(String::new(), |f| format!(" [{f}]"));
        out.push_str(&format!("  {}{flag}\n      {} (default: {})\n", v.name, v.meaning, v.default));
    }
    out
}

/// `.env.example`, rendered from the table.
pub fn env_example() -> String {
    let mut out = String::from(
        "# bozor's configuration: every variable it reads, with its default. Copy to .env, set what\n\
         # you need and `set -a; . ./.env; set +a` before running bozor. Rendered from\n\
         # api/src/configuration/variables.rs (a test keeps this file equal to it).\n",
    );
    type Keep = fn(&Variable) -> bool;
    let groups: [(&str, Keep); 3] = [
        ("The binary", |v| !v.read_by.iter().any(|r| ["tests", "dev"].contains(r))),
        ("Tests", |v| v.read_by.contains(&"tests")),
        ("./dev", |v| v.read_by.contains(&"dev") && !v.read_by.contains(&"tests")),
    ];
    for (title, keep) in groups {
        out.push_str(&format!("\n# --- {title} ---\n"));
        for v in VARIABLES.iter().filter(|v| keep(v)) {
            out.push_str(&format!("\n# {} (default: {})\n", v.meaning, v.default));
            let placeholder = v.default.contains(' ') || v.default.contains('<') || v.default.contains('$');
            let line = if v.default == "unset" || placeholder {
                format!("# {}=\n", v.name)
            } else {
                format!("# {}={}\n", v.name, v.default)
            };
            out.push_str(&line);
        }
    }
    out
}

/// A `BOZOR_` variable in `env` that no table entry names: a typo, most likely. Returns the
/// unknown names with the closest known one.
pub fn unknown<'a>(env: impl Iterator<Item = &'a str>) -> Vec<(String, Option<&'static str>)> {
    env.filter(|n| n.starts_with("BOZOR_") && !VARIABLES.iter().any(|v| v.name == *n))
        .map(|n| {
            let closest = VARIABLES
                .iter()
                .map(|v| (edit_distance(n, v.name), v.name))
                .filter(|(d, _)| *d <= 3)
                .min()
                .map(|(_, name)| name);
            (n.to_owned(), closest)
        })
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
    }

    #[test]
    fn env_example_is_rendered_from_the_table() {
        let path = repo(".env.example");
        let rendered = env_example();
        if std::env::var("BOZOR_WRITE_FIXTURES").is_ok_and(|v| !v.is_empty()) {
            std::fs::write(&path, &rendered).unwrap();
        }
        let file = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(file, rendered, ".env.example differs from the table: run with BOZOR_WRITE_FIXTURES=1");
    }

    /// Every `"BOZOR_..."` literal in the code and every `BOZOR_...` in `./dev` is in the
    /// table, and every entry is in the README's configuration table.
    #[test]
    fn every_variable_read_is_in_the_table_and_the_readme() {
        let mut sources = vec![repo("dev")];
        for dir in ["api/src", "commands/src", "projections/src", "search-sync/src", "tests/tests", "tests/src"] {
            let mut stack = vec![repo(dir)];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap().flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("variables.rs") {
                        sources.push(p);
                    }
                }
            }
        }
        let mut missing = Vec::new();
        for path in sources {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut rest = text.as_str();
            while let Some(i) = rest.find("BOZOR_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                let is_prefix = name.ends_with('_');
                if !is_prefix && !VARIABLES.iter().any(|v| v.name == name) && !missing.contains(&name) {
                    missing.push(name);
                }
            }
        }
        assert!(missing.is_empty(), "read but not in configuration/variables.rs: {missing:?}");
        let readme = std::fs::read_to_string(repo("README.md")).unwrap();
        let undocumented: Vec<_> =
            VARIABLES.iter().filter(|v| !readme.contains(&format!("`{}`", v.name))).map(|v| v.name).collect();
        assert!(undocumented.is_empty(), "not in the README's configuration table: {undocumented:?}");
    }

    #[test]
    fn a_typo_is_named_with_the_closest_variable() {
        let found =
            unknown(["BOZOR_DATABSE_URL", "BOZOR_HTTP_ADDR", "PATH", "BOZOR_WHATEVER_ELSE_ENTIRELY"].into_iter());
        assert_eq!(
            found,
            vec![
                ("BOZOR_DATABSE_URL".to_owned(), Some("BOZOR_DATABASE_URL")),
                ("BOZOR_WHATEVER_ELSE_ENTIRELY".to_owned(), None)
            ]
        );
    }

    #[test]
    fn help_lists_what_a_role_reads() {
        let serve = help_text("serve");
        assert!(serve.contains("BOZOR_HTTP_ADDR [--http-addr]") && serve.contains("BOZOR_DATABASE_URL"));
        assert!(!help_text("relay").contains("BOZOR_HTTP_ADDR"));
        assert!(!help_text("token").contains("BOZOR_DATABASE_URL") && help_text("token").contains("BOZOR_JWT_SECRET"));
    }
}
