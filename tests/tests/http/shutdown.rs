//! Graceful shutdown: every role, run as the binary, stops on SIGTERM and on SIGINT, finishes
//! what it was doing and exits 0 within BOZOR_SHUTDOWN_TIMEOUT.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bozor_bin, spawn_with, ReadSide};

fn start(role: &str, db_url: &str) -> Child {
    let mut cmd = Command::new(bozor_bin());
    cmd.arg(role)
        .env("BOZOR_DATABASE_URL", db_url)
        .env("BOZOR_HTTP_ADDR", "127.0.0.1:0")
        .env("BOZOR_SHUTDOWN_TIMEOUT", "10")
        .env("BOZOR_DB_POOL_MAX", "4")
        .env("RUST_LOG", "warn")
        .env_remove("BOZOR_KAFKA_BROKERS")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if role == "relay" {
        let brokers = std::env::var("BOZOR_TEST_KAFKA_BROKERS").unwrap_or_default();
        cmd.env("BOZOR_KAFKA_BROKERS", brokers)
            .env("BOZOR_KAFKA_TOPIC_PREFIX", format!("shutdown{}", std::process::id()));
    }
    cmd.spawn().expect("bozor starts")
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status().unwrap().success();
    assert!(ok, "kill -{name} failed");
}

/// Waits for the child to exit, at most `seconds`; answers its exit code.
fn exit_code(child: &mut Child, seconds: u64) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("still running after {seconds} s");
}

#[tokio::test]
async fn every_role_stops_cleanly_on_sigterm_and_sigint() {
    let app = spawn_with(ReadSide::Elsewhere).await;
    let mut roles = vec!["up", "serve", "project", "search-sync", "scheduler"];
    if std::env::var("BOZOR_TEST_KAFKA_BROKERS").is_ok() {
        roles.push("relay");
    }
    for (i, role) in roles.iter().enumerate() {
        let sig = if i % 2 == 0 { "TERM" } else { "INT" };
        let mut child = start(role, &app.db.url);
        // Running: past start-up (migrations, pools, first batches).
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert!(child.try_wait().unwrap().is_none(), "{role} exited early");
        signal(&child, sig);
        let started = Instant::now();
        assert_eq!(exit_code(&mut child, 15), Some(0), "bozor {role} after SIG{sig}");
        assert!(started.elapsed() < Duration::from_secs(12), "{role} took {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn logs_are_json_lines_when_asked_and_a_bad_format_is_named() {
    let app = spawn_with(ReadSide::Elsewhere).await;
    let mut child = Command::new(bozor_bin())
        .arg("serve")
        .env("BOZOR_DATABASE_URL", &app.db.url)
        .env("BOZOR_HTTP_ADDR", "127.0.0.1:0")
        .env("BOZOR_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("BOZOR_KAFKA_BROKERS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    signal(&child, "TERM");
    assert_eq!(exit_code(&mut child, 15), Some(0));
    let mut logged = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut logged).unwrap();
    let lines: Vec<serde_json::Value> =
        logged.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines
        .iter()
        .any(|l| l["level"] == "WARN" && l["message"].as_str().unwrap_or("").contains("development keys")));
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["target"].is_string()), "{logged}");
    let out = Command::new(bozor_bin()).arg("migrate").env("BOZOR_LOG_FORMAT", "xml").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("BOZOR_LOG_FORMAT"));
}
