//! Sending one-time codes by SMS: the `SmsSender` trait, Eskiz.uz over HTTP for production
//! and a console sender for development (it logs the message, code included).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bozor_domain::user::Phone;
use serde::Deserialize;
use tokio::sync::Mutex;

/// Why an SMS was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The gateway could not be reached or answered with an error.
    #[error("SMS gateway: {0}")]
    Gateway(String),
}

/// A boxed future, so senders can live behind `dyn SmsSender`.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SmsError>> + Send + 'a>>;

/// Something that delivers a text message to a phone.
pub trait SmsSender: Send + Sync {
    /// Sends `text` to `phone`. Fails when the gateway refuses or cannot be reached.
    fn send<'a>(&'a self, phone: &'a Phone, text: &'a str) -> SendFuture<'a>;
}

/// Development: writes the message to the log instead of sending it. Refused in production,
/// where it would put login codes into logs.
pub struct ConsoleSender;

impl SmsSender for ConsoleSender {
    fn send<'a>(&'a self, phone: &'a Phone, text: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            tracing::info!(phone = %phone, text, "sms (console sender, not sent)");
            Ok(())
        })
    }
}

/// Where and as whom to reach Eskiz.
#[derive(Debug, Clone)]
pub struct EskizSettings {
    /// `BOZOR_ESKIZ_URL`, default `https://notify.eskiz.uz`.
    pub base_url: String,
    /// `BOZOR_ESKIZ_EMAIL`.
    pub email: String,
    /// `BOZOR_ESKIZ_PASSWORD`.
    pub password: String,
    /// `BOZOR_ESKIZ_FROM`, the approved sender name (default `4546`).
    pub from: String,
}

/// Eskiz.uz: logs in for a bearer token (kept until Eskiz refuses it, then renewed once per
/// send), then posts each message as a form.
pub struct EskizSender {
    settings: EskizSettings,
    http: reqwest::Client,
    token: Mutex<Option<String>>,
}

#[derive(Deserialize)]
struct LoginReply {
    data: LoginData,
}

#[derive(Deserialize)]
struct LoginData {
    token: String,
}

/// Longest an Eskiz call may take.
const ESKIZ_TIMEOUT: Duration = Duration::from_secs(10);

impl EskizSender {
    /// A sender with its own HTTP client.
    pub fn new(settings: EskizSettings) -> EskizSender {
        let http = reqwest::Client::builder().timeout(ESKIZ_TIMEOUT).build().expect("an HTTP client builds");
        EskizSender { settings, http, token: Mutex::new(None) }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }

    async fn login(&self) -> Result<String, SmsError> {
        let form = [("email", self.settings.email.as_str()), ("password", self.settings.password.as_str())];
        let res = self.http.post(self.url("/api/auth/login")).form(&form).send().await.map_err(gateway)?;
        if !res.status().is_success() {
            return Err(SmsError::Gateway(format!("login answered {}", res.status())));
        }
        Ok(res.json::<LoginReply>().await.map_err(gateway)?.data.token)
    }

    /// Posts one message; `Ok(false)` when Eskiz refuses the token.
    async fn post(&self, token: &str, phone: &Phone, text: &str) -> Result<bool, SmsError> {
        let form = [("mobile_phone", phone.digits()), ("message", text), ("from", self.settings.from.as_str())];
        let res = self
            .http
            .post(self.url("/api/message/sms/send"))
            .bearer_auth(token)
            .form(&form)
            .send()
            .await
            .map_err(gateway)?;
        match res.status() {
            s if s == reqwest::StatusCode::UNAUTHORIZED => Ok(false),
            s if s.is_success() => Ok(true),
            s => Err(SmsError::Gateway(format!("send answered {s}"))),
        }
    }
}

fn gateway(e: reqwest::Error) -> SmsError {
    SmsError::Gateway(e.to_string())
}

impl EskizSender {
    /// The cached token, or a fresh one. The lock is held only while logging in, so a burst
    /// of codes logs in once, and sends run side by side.
    async fn token(&self) -> Result<String, SmsError> {
        let mut token = self.token.lock().await;
        if let Some(t) = token.as_ref() {
            return Ok(t.clone());
        }
        Ok(token.insert(self.login().await?).clone())
    }

    /// Drops `stale` unless another send has replaced it already.
    async fn forget(&self, stale: &str) {
        let mut token = self.token.lock().await;
        if token.as_deref() == Some(stale) {
            *token = None;
        }
    }
}

impl SmsSender for EskizSender {
    fn send<'a>(&'a self, phone: &'a Phone, text: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            // At most two attempts: with the cached token, then once with a fresh one.
            for _ in 0..2 {
                let token = self.token().await?;
                if self.post(&token, phone, text).await? {
                    return Ok(());
                }
                self.forget(&token).await;
            }
            Err(SmsError::Gateway("Eskiz refused a fresh token".into()))
        })
    }
}
