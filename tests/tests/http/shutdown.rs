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
