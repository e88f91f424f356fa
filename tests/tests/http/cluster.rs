//! The distributed shape, as `./dev cluster` starts it: PostgreSQL, Apache Kafka, and each role
//! a process (`serve` twice; two each of relay, project, search-sync and scheduler). Traffic goes
//! through both APIs; then one process of every role is stopped (SIGTERM) while traffic goes on
//! through the other API, and the rest carry everything: the standby relay and scheduler take
//! over, the projectors left take the partitions. At the end the read models equal a fresh
//! replay of the event store: nothing lost, nothing applied twice.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{behind, bozor_bin, read_models, spawn_with, wait_for, ReadSide, User};

struct Cluster {
    dir: std::path::PathBuf,
    env: Vec<(String, String)>,
}

impl Cluster {
    fn dev(&self, what: &str) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = Command::new(root.join("dev")).args(["cluster", what]).envs(self.env.clone()).output().unwrap();
        assert!(
            out.status.success(),
            "./dev cluster {what} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pid(&self, name: &str) -> i32 {
        std::fs::read_to_string(self.dir.join(format!("{name}.pid"))).unwrap().trim().parse().unwrap()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// SIGTERM to one process; waits for it to be gone and checks it said it stopped in time.
    async fn stop(&self, name: &str) {
        let pid = self.pid(name);
        assert!(Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap().success());
        let started = Instant::now();
        let alive = || {
            Command::new("kill")
                .arg("-0")
                .arg(pid.to_string())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap()
                .success()
        };
        while alive() {
            assert!(started.elapsed() < Duration::from_secs(20), "{name} did not stop");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = self.log(name);
        assert!(log.contains("stopped") && !log.contains("did not stop"), "{name} did not stop cleanly:\n{log}");
        std::fs::remove_file(self.dir.join(format!("{name}.pid"))).unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "pid") {
                if let Ok(pid) = std::fs::read_to_string(e.path()) {
                    let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A base port with the ten after it free.
fn free_ports() -> u16 {
    for _ in 0..50 {
        let base = 20_000 + (Uuid::new_v4().as_u128() % 30_000) as u16;
        if (base..base + 20).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no free ports")
}

async fn post(http: &reqwest::Client, base: &str, user: &User, path: &str, body: Value) -> Value {
    let res = http
        .post(format!("{base}{path}"))
        .header("Authorization", &user.header)
        .header("Content-Type", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

/// A seller lists and submits a car; the scheduler (its clock 49 hours on) approves it.
async fn list_a_car(http: &reqwest::Client, base: &str, seller: &User, n: usize) -> Uuid {
    let body = json!({ "title": format!("Chevrolet Malibu {n}"), "category": "cars", "price": 2_000_000_000i64 + n as i64,
                       "details": { "kind": "classified", "contact_phone": "+998901112233" } });
    let id: Uuid = post(http, base, seller, "/v1/listings", body).await["id"].as_str().unwrap().parse().unwrap();
    post(http, base, seller, &format!("/v1/listings/{id}/submit"), json!({})).await;
    id
}

async fn all_active_and_found(http: &reqwest::Client, base: &str, ids: &[Uuid]) -> bool {
    for id in ids {
        let Ok(r) = http.get(format!("{base}/v1/listings/{id}")).send().await else { return false };
        let Ok(v) = r.json::<Value>().await else { return false };
        if v["status"]["status"] != "active" {
            return false;
        }
    }
    let Ok(r) = http.get(format!("{base}/v1/search?q=malibu&limit=50")).send().await else { return false };
    let Ok(v) = r.json::<Value>().await else { return false };
    v["total"].as_u64() == Some(ids.len() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_carries_traffic_while_one_process_of_every_role_stops() {
    let Ok(brokers) = std::env::var("BOZOR_TEST_KAFKA_BROKERS") else {
        eprintln!("SKIPPED: BOZOR_TEST_KAFKA_BROKERS is not set (./dev test starts Apache Kafka and sets it)");
        return;
    };
    let app = spawn_with(ReadSide::Elsewhere).await;
    let port = free_ports();
    let dir = std::env::temp_dir().join(format!("bozor-cluster-{}", Uuid::new_v4()));
    let env: Vec<(String, String)> = [
        ("BOZOR_CLUSTER_DIR", dir.display().to_string()),
        ("BOZOR_CLUSTER_PORT", port.to_string()),
        ("BOZOR_CLUSTER_REPLICAS", "2".into()),
        ("BOZOR_BIN", bozor_bin().display().to_string()),
        ("BOZOR_DATABASE_URL", app.db.url.clone()),
        ("BOZOR_KAFKA_BROKERS", brokers),
        ("BOZOR_KAFKA_TOPIC_PREFIX", format!("c{}", &Uuid::new_v4().simple().to_string()[..12])),
        ("BOZOR_KAFKA_PARTITIONS", "3".into()),
        ("BOZOR_DB_POOL_MAX", "4".into()),
        ("BOZOR_SHUTDOWN_TIMEOUT", "15".into()),
        ("BOZOR_TEST_CLOCK_OFFSET_SECONDS", (49 * 3600).to_string()),
        ("RUST_LOG", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cluster = Cluster { dir, env };
    let started = Instant::now();
    cluster.dev("up");
    eprintln!("cluster up in {:?}", started.elapsed());
    let (a, b) = (format!("http://127.0.0.1:{port}"), format!("http://127.0.0.1:{}", port + 1));
    let http = reqwest::Client::new();
    let seller = User::seller("premium");

    // A listing read while it waits for the scheduler is cached by the API that served it; an
    // API without the projector in its process (`serve`) keeps it only briefly, so the approval
    // shows within seconds without `min_position`.
    let first = list_a_car(&http, &a, &seller, 100).await;
    let _ = http.get(format!("{b}/v1/listings/{first}")).send().await.unwrap();
    wait_for("the approval to show through serve's cache", 10, || async {
        let v: Value = http.get(format!("{b}/v1/listings/{first}")).send().await.unwrap().json().await.unwrap();
        v["status"]["status"] == "active"
    })
    .await;

    // Traffic through both APIs.
    let mut ids = vec![first];
    for n in 0..8 {
        ids.push(list_a_car(&http, if n % 2 == 0 { &a } else { &b }, &seller, n).await);
    }
    wait_for("the first listings approved, projected and indexed", 60, || async {
        all_active_and_found(&http, &b, &ids).await
    })
    .await;
    eprintln!("first traffic carried at {:?}", started.elapsed());
    // Each worker role's status endpoint answers.
    let status: Value =
        http.get(format!("http://127.0.0.1:{}/healthz", port + 10)).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["role"], "relay");

    // One process of every role stops; traffic goes on through the other API.
    for name in ["serve-1", "relay-1", "project-1", "search-sync-1", "scheduler-1"] {
        cluster.stop(name).await;
    }
    assert!(http.get(format!("{a}/healthz")).send().await.is_err(), "serve-1 still answers");
    for n in 8..16 {
        ids.push(list_a_car(&http, &b, &seller, n).await);
    }
    wait_for("the standbys and the processes left to carry the later listings", 90, || async {
        all_active_and_found(&http, &b, &ids).await
    })
    .await;
    eprintln!("later traffic carried at {:?}", started.elapsed());
    let c = app.db.client().await;
    wait_for("every projection at the head", 60, || async { behind(&c).await == 0 }).await;
    let ready: Value = http.get(format!("{b}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    // The API's metrics show the relay caught up with the log.
    let metrics = http.get(format!("{b}/metrics")).send().await.unwrap().text().await.unwrap();
    let relay_lag = metrics.lines().find_map(|l| l.strip_prefix(r#"bozor_relay_lag_events{relay="main"} "#));
    assert_eq!(relay_lag, Some("0"), "{metrics}");

    // Everything stops cleanly; the read models equal a fresh replay of the store.
    cluster.dev("status");
    cluster.dev("down");
    eprintln!("cluster down at {:?}", started.elapsed());
    assert!(!cluster.dir.join("serve-2.pid").exists(), "down removes the pid files of what it stopped");
    for name in ["serve-2", "relay-2", "project-2", "search-sync-2", "scheduler-2"] {
        let log = cluster.log(name);
        assert!(log.contains("stopped") && !log.contains("did not stop"), "{name}:\n{log}");
    }
    let live = read_models(&c).await;
    for p in bozor_projections::all() {
        bozor_projections::rebuild::rebuild(&app.db.pool, p).await.unwrap();
    }
    let replay = read_models(&c).await;
    for (table, rows) in &replay {
        assert_eq!(&live[table], rows, "{table}: the cluster's rows equal a fresh replay");
    }
    let approvals: i64 =
        c.query_one("SELECT count(*) FROM events WHERE event_type = 'ListingApproved'", &[]).await.unwrap().get(0);
    assert_eq!(approvals, ids.len() as i64, "each listing approved once, by one scheduler");
}

/// compose.yaml has the same shape: the broker the tests run, and every role a service with a
/// health check.
#[test]
fn compose_describes_the_same_shape() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let compose = std::fs::read_to_string(root.join("compose.yaml")).unwrap();
    let pom = std::fs::read_to_string(root.join("kafka/pom.xml")).unwrap();
    let version = pom.split("<kafka.version>").nth(1).and_then(|s| s.split('<').next()).unwrap();
    assert!(
        compose.contains(&format!("image: apache/kafka:{version}")),
        "compose.yaml runs another Kafka than the tests ({version})"
    );
    for service in [
        "postgres:",
        "kafka:",
        "meilisearch:",
        "serve-1:",
        "serve-2:",
        "relay:",
        "project:",
        "search-sync:",
        "scheduler:",
    ] {
        assert!(compose.contains(&format!("\n  {service}\n")), "compose.yaml lacks the service {service}");
    }
    for role in ["serve", "relay", "project", "search-sync", "scheduler"] {
        assert!(compose.contains(&format!("command: [\"{role}\"]")), "no service runs bozor {role}");
    }
    assert!(compose.matches("healthcheck:").count() >= 5, "health checks missing");
    assert!(compose.contains("bozor\", \"probe\""), "the roles' health checks use bozor probe");
}
