//! Authentication: phone + one-time code login, access tokens (JWT, 15 min), rotating refresh
//! tokens (30 days, revocable by family), SMS senders, and the rate limits that guard them.

pub mod jwt;
pub mod otp;
pub mod ratelimit;
pub mod refresh;
pub mod sms;

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use bozor_domain::user::User;
use chrono::{DateTime, Utc};

use self::jwt::{Claims, Keys};
use self::ratelimit::RateLimiter;
use self::sms::{ConsoleSender, EskizSender, EskizSettings, SmsSender};
use crate::errors::ApiError;

/// How long an access token lives.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a refresh token lives (each rotation starts a new one).
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Which SMS sender to use (`BOZOR_SMS`).
#[derive(Debug, Clone)]
pub enum SmsSettings {
    /// `console`: log messages (development only).
    Console,
    /// `eskiz`: send through Eskiz.uz.
    Eskiz(EskizSettings),
}

/// Rate limits, per minute with a burst of the same size.
#[derive(Debug, Clone, Copy)]
pub struct RateSettings {
    /// `BOZOR_RATE_AUTH_PER_IP` (default 20): auth calls per IP.
    pub auth_per_ip: u32,
    /// `BOZOR_RATE_COMMANDS_PER_USER` (default 300): commands per user.
    pub commands_per_user: u32,
    /// `BOZOR_RATE_COMMANDS_PER_IP` (default 6000): commands per IP, whoever sends them; high,
    /// because carrier NAT puts many phones behind one address.
    pub commands_per_ip: u32,
    /// `BOZOR_OTP_PER_PHONE_PER_HOUR` (default 5): codes sent to one number per hour.
    pub otp_per_phone_per_hour: u32,
}

impl Default for RateSettings {
    fn default() -> Self {
        RateSettings { auth_per_ip: 20, commands_per_user: 300, commands_per_ip: 6_000, otp_per_phone_per_hour: 5 }
    }
}

/// Everything authentication reads from the environment.
#[derive(Clone)]
pub struct AuthSettings {
    /// `BOZOR_JWT_SECRET`: signs access tokens and keys the code hashes.
    pub jwt_secret: Vec<u8>,
    /// `BOZOR_MASTER_KEY`: 32 bytes (base64 or hex) wrapping the credentials' data keys.
    pub master_key: [u8; 32],
    pub sms: SmsSettings,
    pub rate: RateSettings,
    /// `BOZOR_TRUST_PROXY=1`: take the client's IP from `X-Forwarded-For` (behind a proxy
    /// that sets it); otherwise the peer address.
    pub trust_proxy: bool,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("sms", &self.sms)
            .field("rate", &self.rate)
            .field("trust_proxy", &self.trust_proxy)
            .finish_non_exhaustive() // secrets are never printed
    }
}

/// Development defaults, refused in production: anyone can read them here.
pub const DEV_JWT_SECRET: &str = "bozor-development-jwt-secret-never-use-in-production";
/// The development master key (32 bytes, base64), refused in production.
pub const DEV_MASTER_KEY_B64: &str = "Ym96b3ItZGV2ZWxvcG1lbnQtbWFzdGVyLWtleSEhISE=";

impl AuthSettings {
    /// Development settings: the published defaults, console SMS, default limits.
    pub fn development() -> AuthSettings {
        AuthSettings {
            jwt_secret: DEV_JWT_SECRET.as_bytes().to_vec(),
            master_key: parse_master_key(DEV_MASTER_KEY_B64).expect("the development key is 32 bytes"),
            sms: SmsSettings::Console,
            rate: RateSettings::default(),
            trust_proxy: false,
        }
    }
}

/// Parses a 32-byte key given as 64 hex digits or as base64.
pub fn parse_master_key(s: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let s = s.trim();
    let bytes = match s.len() {
        64 => hex::decode(s).ok()?,
        _ => base64::engine::general_purpose::STANDARD.decode(s).ok()?,
    };
    bytes.try_into().ok()
}

/// Authentication at run time: keys, the SMS sender and the limiters.
pub struct Auth {
    pub keys: Keys,
    pub sms: Arc<dyn SmsSender>,
    pub rate: RateSettings,
    pub trust_proxy: bool,
    /// Keys the hashes of one-time codes (derived from the JWT secret).
    pub otp_key: Vec<u8>,
    pub auth_per_ip: RateLimiter,
    pub commands_per_user: RateLimiter,
    pub commands_per_ip: RateLimiter,
}

impl Auth {
    /// Builds the runtime from settings.
    pub fn new(settings: &AuthSettings) -> Auth {
        use hmac::{Hmac, Mac};
        let sms: Arc<dyn SmsSender> = match &settings.sms {
            SmsSettings::Console => Arc::new(ConsoleSender),
            SmsSettings::Eskiz(e) => Arc::new(EskizSender::new(e.clone())),
        };
        let otp_key = Hmac::<sha2::Sha256>::new_from_slice(&settings.jwt_secret)
            .expect("HMAC takes keys of any length")
            .chain_update(b"bozor one-time codes")
            .finalize()
            .into_bytes()
            .to_vec();
        let r = settings.rate;
        Auth {
            keys: Keys::new(&settings.jwt_secret),
            sms,
            rate: r,
            trust_proxy: settings.trust_proxy,
            otp_key,
            auth_per_ip: RateLimiter::new(r.auth_per_ip, r.auth_per_ip),
            commands_per_user: RateLimiter::new(r.commands_per_user, r.commands_per_user),
            commands_per_ip: RateLimiter::new(r.commands_per_ip, r.commands_per_ip),
        }
    }

    /// An access token for `user` as the event store knows them now.
    pub fn access_token(&self, user: &User, now: DateTime<Utc>) -> String {
        let iat = now.timestamp();
        self.keys.mint(&Claims {
            sub: user.id,
            roles: user.role_list(),
            plan: user.plan(),
            district: user.district(),
            iat,
            exp: iat + ACCESS_TTL.as_secs() as i64,
            iss: jwt::ISSUER.into(),
        })
    }

    /// The client's address: the peer, or the first `X-Forwarded-For` hop behind a trusted proxy.
    pub fn client_ip(&self, req: &HttpRequest) -> String {
        if self.trust_proxy {
            if let Some(ip) = req.connection_info().realip_remote_addr() {
                return ip.to_owned();
            }
        }
        req.peer_addr().map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())
    }

    /// Takes one request from `key`'s bucket of `limiter`; 429 `rate_limited` with
    /// Retry-After when it is empty.
    pub fn limit(limiter: &RateLimiter, key: &str) -> Result<(), ApiError> {
        limiter.check(key).map_err(|wait| {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::new("rate_limited", "too many requests; retry later").retry_after(seconds.max(1))
        })
    }
}
