//! The admin console in a real browser: headless Chromium (Debian's `chromium`), driven through
//! WebDriver by `chromedriver` (Debian's `chromium-driver`), against the real server. An admin
//! signs in with a pasted token, approves a listing, sees it leave the queue and appear in the
//! public list, and starts a rebuild. `./dev test` installs both packages.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{spawn, token_for, wait_for, User};

/// `chromedriver` on a free port, killed when dropped.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    session: String,
    _profile: tempdir::Dir,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("bozor-{tag}-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn find(var: &str, names: &[&str]) -> Option<String> {
    if let Ok(p) = std::env::var(var) {
        if !p.trim().is_empty() {
            return Some(p);
        }
    }
    let path = std::env::var("PATH").unwrap_or_default();
    names.iter().find_map(|n| {
        path.split(':').map(|d| std::path::Path::new(d).join(n)).find(|p| p.exists()).map(|p| p.display().to_string())
    })
}

impl Driver {
    async fn start() -> Driver {
        let chromium = find("BOZOR_TEST_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]).expect(
            "no Chromium: `./dev test` installs Debian's chromium and chromium-driver (or set BOZOR_TEST_CHROMIUM)",
        );
        let chromedriver = find("BOZOR_TEST_CHROMEDRIVER", &["chromedriver"])
            .expect("no chromedriver: install Debian's chromium-driver");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true) {
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempdir::Dir::new("chromium");
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--window-size=1280,900", format!("--user-data-dir={}", profile.0.display())]
            }
        }}});
        let res: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = res["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {res}")).to_owned();
        Driver { child, base, http, session, _profile: profile }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs `script` (a function body) in the page with `args`; its return value.
    async fn js(&self, script: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": script, "args": args }))).await
    }

    /// Waits until `script` returns something truthy (what the page shows, not timing).
    async fn until(&self, what: &str, script: &str, args: Value) -> Value {
        let started = Instant::now();
        loop {
            let v = self.js(script, args.clone()).await;
            if !(v.is_null() || v == false || v == "" || v.get("error").is_some()) {
                return v;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let status = self.js("return document.getElementById('status').textContent", json!([])).await;
                panic!("the console never showed {what} (status line: {status})");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Clicks the element `selector` finds, as a user would (WebDriver's element click).
    async fn click(&self, selector: &str) {
        let found = self
            .call(reqwest::Method::POST, "/element", Some(json!({ "using": "css selector", "value": selector })))
            .await;
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {selector}: {found}"))
            .to_owned();
        let r = self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
        assert!(r.is_null(), "click on {selector}: {r}");
    }

    async fn type_into(&self, selector: &str, text: &str) {
        let found = self
            .call(reqwest::Method::POST, "/element", Some(json!({ "using": "css selector", "value": selector })))
            .await;
        let id = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_owned();
        self.call(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({ "text": text }))).await;
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A test that failed never ended its session: the browser outlives its driver unless
        // it is stopped here, found by its profile directory.
        let _ = Command::new("pkill").arg("-f").arg(format!("user-data-dir={}", self._profile.0.display())).status();
    }
}

#[tokio::test]
async fn an_admin_signs_in_approves_a_listing_and_starts_a_rebuild_in_a_real_browser() {
    let app = spawn().await;
    let seller = User::seller("free");
    let body = json!({ "title": "Chevrolet Nexia 3, 2019", "category": "cars", "price": 950_000_000i64,
                       "details": { "kind": "classified", "contact_phone": "+998901112233" } });
    let id = app.post(&seller, "/v1/listings", body).await.ok().id();
    app.post(&seller, &format!("/v1/listings/{id}/submit"), json!({})).await.ok();
    wait_for("the listing to wait in the queue", 20, || async {
        let page = app.get_as(&User::new("support"), "/v1/listings?status=pending").await;
        page.body["items"].as_array().is_some_and(|a| a.iter().any(|l| l["id"] == id.to_string()))
    })
    .await;

    let browser = Driver::start().await;
    browser.go(&format!("{}/admin", app.base)).await;
    // Sign in with a pasted admin token.
    let admin = uuid::Uuid::new_v4();
    browser.type_into("#token-input", &token_for(admin, "admin", None, None)).await;
    browser.click("#token-signin").await;
    let who = browser
        .until(
            "the signed-in admin",
            "const w = document.getElementById('whoami'); return w.getAttribute('data-roles') && w.textContent",
            json!([]),
        )
        .await;
    assert!(who.as_str().unwrap().contains(&admin.to_string()) && who.as_str().unwrap().contains("admin"), "{who}");

    // The moderation queue shows the listing; approve it; it leaves the queue.
    browser.click("#tab-moderation").await;
    let row = format!("#queue tr[data-listing-id=\"{id}\"]");
    browser.until("the pending listing", "return !!document.querySelector(arguments[0])", json!([row])).await;
    browser.click(&format!("{row} button.approve")).await;
    browser.until("the listing leaving the queue", "return !document.querySelector(arguments[0])", json!([row])).await;
    // ... and it is in the public list.
    wait_for("the approved listing in the public list", 20, || async {
        let page = app.get("/v1/listings").await;
        page.body["items"].as_array().is_some_and(|a| a.iter().any(|l| l["id"] == id.to_string()))
    })
    .await;
    assert_eq!(app.get(&format!("/v1/listings/{id}")).await.ok().body["status"]["status"], "active");

    // Projections: start a rebuild of the listings read model from its row.
    browser.click("#tab-projections").await;
    let row = "#projections tr[data-projection=\"listings\"]";
    browser.until("the listings projection", "return !!document.querySelector(arguments[0])", json!([row])).await;
    browser.click(&format!("{row} button.rebuild")).await;
    let said = browser
        .until(
            "that the rebuild started",
            "const s = document.getElementById('status').textContent; return s.includes('Rebuild of listings') && s",
            json!([]),
        )
        .await;
    assert!(said.as_str().unwrap().contains("started"), "{said}");
    // The rebuild ran: the projection is live again, and the listing is still there.
    let c = app.db.client().await;
    wait_for("the rebuild to finish", 30, || async {
        let state: String = c
            .query_one("SELECT state FROM projection_checkpoints WHERE projection = 'listings'", &[])
            .await
            .unwrap()
            .get(0);
        state == "live"
    })
    .await;
    browser
        .until(
            "the projection live again",
            "const r = document.querySelector(arguments[0]); return r && r.querySelector('.state').textContent === 'live'",
            json!([row]),
        )
        .await;
    assert_eq!(app.get(&format!("/v1/listings/{id}")).await.ok().body["status"]["status"], "active");
    // Nothing in the page failed: no uncaught error reached the status line.
    let status = browser.js("return document.getElementById('status').className", json!([])).await;
    assert!(!status.as_str().unwrap_or("").contains("error"), "{status}");
    browser.call(reqwest::Method::DELETE, "", None).await;
}

#[tokio::test]
async fn an_admin_signs_in_with_a_phone_code_and_the_api_reference_renders_offline() {
    let (app, gateway) = crate::auth::app_with_sms(|_| {}).await;
    // The first admin, bootstrapped as `bozor admin grant --phone` does.
    let settings = bozor_api::configuration::Settings::development(&app.db.url);
    let terms = bozor_api::cli::grant_terms("admin", None, None).unwrap();
    let granted = bozor_api::cli::grant(&app.db.pool, &settings, None, Some("+998 90 555 12 34"), terms).await.unwrap();
    let granted: Value = serde_json::from_str(&granted).unwrap();
    let admin_id = granted["user_id"].as_str().unwrap().to_owned();

    let browser = Driver::start().await;
    browser.go(&format!("{}/admin", app.base)).await;
    browser.type_into("#phone-input", "+998 90 555 12 34").await;
    browser.click("#code-request").await;
    let started = Instant::now();
    let code = loop {
        let sent = gateway.lock().unwrap().code_sent_to("998905551234");
        if let Some(code) = sent {
            break code;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no code was sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    browser.type_into("#code-input", &code).await;
    browser.click("#code-verify").await;
    browser
        .until(
            "the console for the admin signed in by phone",
            "return !document.getElementById('console').hidden && document.getElementById('whoami').getAttribute('data-roles')",
            json!([]),
        )
        .await;
    let roles = browser.js("return document.getElementById('whoami').getAttribute('data-roles')", json!([])).await;
    assert!(roles.as_str().unwrap().split(' ').any(|r| r == "admin"), "{roles}");
    // Users: found by the number they log in with.
    browser.click("#tab-users").await;
    browser.type_into("#user-id-input", "+998 90 555 12 34").await;
    browser.click("#user-find").await;
    browser
        .until(
            "the user found by phone",
            "return !!document.querySelector(`#users tr[data-user-id=\"${arguments[0]}\"]`)",
            json!([admin_id]),
        )
        .await;

    // The API reference: every operation of the document rendered, with nothing from a CDN.
    browser.go(&format!("{}/docs", app.base)).await;
    let rendered = browser
        .until(
            "the operations of /openapi.json",
            "const n = document.querySelectorAll('[data-operation]').length; return n > 0 && n",
            json!([]),
        )
        .await;
    let doc: Value = app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    let operations: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(rendered.as_u64(), Some(operations as u64));
    for op in ["POST /v1/listings", "GET /v1/search/suggest", "POST /v1/payments/payme"] {
        let shown =
            browser.js("return !!document.querySelector(`[data-operation=\"${arguments[0]}\"]`)", json!([op])).await;
        assert_eq!(shown, true, "{op} is not rendered");
    }
    let codes = browser.js("return document.querySelectorAll('#error-codes tr').length", json!([])).await;
    assert!(codes.as_u64().unwrap() as usize >= bozor_api::errors::ERROR_CODES.len(), "{codes}");
    // Nothing was loaded from another origin.
    let origins = browser
        .js(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin).filter(o => o !== location.origin)",
            json!([]),
        )
        .await;
    assert_eq!(origins, json!([]), "resources from elsewhere");
    browser.call(reqwest::Method::DELETE, "", None).await;
}
