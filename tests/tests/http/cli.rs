//! The binary's command line: every subcommand explains itself, flags win over the
//! environment, and bad configuration stops it with the variable named.

use std::process::Command;

use crate::support::bozor_bin;

fn bozor(args: &[&str]) -> Command {
    let mut cmd = Command::new(bozor_bin());
    cmd.args(args).env("RUST_LOG", "warn").env_remove("BOZOR_ENV").env_remove("BOZOR_JWT_SECRET");
    cmd
}

#[test]
fn every_subcommand_answers_help_with_its_flags_and_the_variables_it_reads() {
    let roles = ["up", "serve", "project", "relay", "search-sync", "scheduler"];
    let others = ["migrate", "rebuild", "audit", "seed", "admin", "token", "bench"];
    let probe = bozor(&["probe", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&probe.stdout).contains("Usage: bozor probe"));
    for sub in roles.iter().chain(&others) {
        let out = bozor(&[sub, "--help"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub} --help failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("Usage: bozor"), "{sub}: {text}");
        assert!(text.contains("Environment (flags win"), "{sub} lists no variables: {text}");
        let wanted = if *sub == "token" { "BOZOR_JWT_SECRET" } else { "BOZOR_DATABASE_URL [--database-url]" };
        assert!(text.contains(wanted), "{sub} does not list {wanted}: {text}");
    }
    for sub in roles {
        let text = String::from_utf8_lossy(&bozor(&[sub, "--help"]).output().unwrap().stdout).into_owned();
        assert!(text.contains("BOZOR_SHUTDOWN_TIMEOUT"), "{sub}: {text}");
    }
    let serve = String::from_utf8_lossy(&bozor(&["serve", "--help"]).output().unwrap().stdout).into_owned();
    assert!(serve.contains("BOZOR_HTTP_ADDR [--http-addr]") && serve.contains("BOZOR_PAYME_KEY"), "{serve}");
    // Nested subcommands list them too.
    let ledger = String::from_utf8_lossy(&bozor(&["audit", "ledger", "--help"]).output().unwrap().stdout).into_owned();
    assert!(ledger.contains("--as-of") && ledger.contains("BOZOR_DATABASE_URL"), "{ledger}");
}

#[test]
fn a_flag_wins_over_its_variable() {
    let user = uuid::Uuid::new_v4().to_string();
    // The environment says production (which refuses the development JWT secret); the flag
    // says development, and wins.
    let out =
        bozor(&["token", "--user", &user, "--env", "development"]).env("BOZOR_ENV", "production").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().split('.').count(), 3, "a JWT");
    // And the other way round: the flag says production.
    let out =
        bozor(&["token", "--user", &user, "--env", "production"]).env("BOZOR_ENV", "development").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BOZOR_JWT_SECRET"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_value_stops_the_binary_naming_the_variable_and_a_typo_is_warned_about() {
    for (name, value) in [
        ("BOZOR_HTTP_WORKERS", "0"),
        ("BOZOR_COMMANDS_AT_ONCE", "0"),
        ("BOZOR_DB_POOL_MAX", "many"),
        ("BOZOR_SHUTDOWN_TIMEOUT", "soon"),
        ("BOZOR_HTTP_ADDR", "localhost"),
        ("BOZOR_SMS", "pigeon"),
    ] {
        let out = bozor(&["migrate"]).env(name, value).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}={value}: {err}");
        assert!(err.contains(name) && err.contains(value), "{name}={value}: {err}");
    }
    // A flag's bad value is named by its variable too.
    let out = bozor(&["migrate", "--shutdown-timeout", "never"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("BOZOR_SHUTDOWN_TIMEOUT"));
    // A variable bozor does not read is most likely a typo: named, with the closest one.
    let user = uuid::Uuid::new_v4().to_string();
    // (Spelled in two halves, so the scan for variables the code reads passes it by.)
    let typo = concat!("BOZOR_JWT_", "SECRTE");
    let out = bozor(&["token", "--user", &user]).env(typo, "x").output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(typo) && err.contains("did you mean BOZOR_JWT_SECRET"), "{err}");
}

#[test]
fn an_empty_value_means_the_default_and_only_the_api_asks_production_for_sms() {
    let user = uuid::Uuid::new_v4().to_string();
    // As an uncommented `NAME=` line of .env.example leaves them.
    let out = bozor(&["token", "--user", &user])
        .env("BOZOR_HTTP_WORKERS", "")
        .env("BOZOR_ENV", "")
        .env("BOZOR_LOG_FORMAT", "")
        .env("BOZOR_SHUTDOWN_TIMEOUT", "")
        .env("BOZOR_SMS", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Production with secrets of its own: a subcommand that sends no SMS starts without an
    // SMS account; the API refuses to.
    let secrets = [
        ("BOZOR_ENV", "production"),
        ("BOZOR_JWT_SECRET", "0123456789abcdef0123456789abcdef-production"),
        ("BOZOR_MASTER_KEY", "cHJvZHVjdGlvbi1tYXN0ZXIta2V5LTMyLWJ5dGVzISE="),
    ];
    let out = bozor(&["token", "--user", &user]).envs(secrets).env_remove("BOZOR_SMS").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        bozor(&["serve"]).envs(secrets).env_remove("BOZOR_SMS").env("BOZOR_HTTP_ADDR", "127.0.0.1:0").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("BOZOR_SMS"));
}
