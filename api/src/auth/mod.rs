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
    /// `BOZOR_RATE_QUERIES_PER_IP` (default 12000): queries per IP, signed in or not.
    pub queries_per_ip: u32,
}

impl Default for RateSettings {
    fn default() -> Self {
        RateSettings {
            auth_per_ip: 20,
            commands_per_user: 300,
            commands_per_ip: 6_000,
            otp_per_phone_per_hour: 5,
            queries_per_ip: 12_000,
        }
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
    /// `BOZOR_TRUST_PROXY=<hops>`: that many proxies of ours stand in front of bozor, each
    /// appending the address it was called from to `X-Forwarded-For`; the client is the entry
    /// that many from the right. 0 (unset): the peer address, headers ignored.
    pub trust_proxy_hops: u8,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("sms", &self.sms)
            .field("rate", &self.rate)
            .field("trust_proxy_hops", &self.trust_proxy_hops)
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
            trust_proxy_hops: 0,
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
    pub trust_proxy_hops: u8,
    /// Keys the hashes of one-time codes (derived from the JWT secret).
    pub otp_key: Vec<u8>,
    pub auth_per_ip: RateLimiter,
    pub commands_per_user: RateLimiter,
    pub commands_per_ip: RateLimiter,
    pub queries_per_ip: RateLimiter,
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
            trust_proxy_hops: settings.trust_proxy_hops,
            otp_key,
            auth_per_ip: RateLimiter::new(r.auth_per_ip, r.auth_per_ip),
            commands_per_user: RateLimiter::new(r.commands_per_user, r.commands_per_user),
            commands_per_ip: RateLimiter::new(r.commands_per_ip, r.commands_per_ip),
            queries_per_ip: RateLimiter::new(r.queries_per_ip, r.queries_per_ip),
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

    /// The client's rate-limit key: its address (see `client_addr`), an IPv6 client by its
    /// /64, which is what one subscriber gets.
    pub fn client_ip(&self, req: &HttpRequest) -> String {
        // `::ffff:a.b.c.d` is an IPv4 client, not one /64 shared by all of them.
        match client_addr(req, self.trust_proxy_hops).map(|ip| ip.to_canonical()) {
            Some(std::net::IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Some(ip) => ip.to_string(),
            None => "unknown".to_owned(),
        }
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

/// The client's address. Behind `hops` proxies of ours, each appending its caller to
/// `X-Forwarded-For` (all such headers, in order, read as one list), the client is the entry
/// `hops` from the right: entries left of it are whatever the client chose to send. Fewer
/// entries than hops, or one that is not an address, means the header did not come through our
/// proxies: the peer address counts then. `Forwarded` and `X-Real-IP` are never read.
pub fn client_addr(req: &HttpRequest, hops: u8) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if hops == 0 {
        return peer;
    }
    let mut entries: Vec<&str> = Vec::new();
    for value in req.headers().get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else { return peer };
        entries.extend(text.split(',').map(str::trim));
    }
    let Some(index) = entries.len().checked_sub(usize::from(hops)) else { return peer };
    let entry = entries[index];
    // An address may come with a port (`1.2.3.4:5678`, `[2001:db8::1]:443`).
    let bare = entry.strip_prefix('[').and_then(|e| e.split_once(']')).map_or(entry, |(ip, _)| ip);
    bare.parse().ok().or_else(|| bare.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok())).or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn addr(hops: u8, headers: &[&str]) -> String {
        let mut req = TestRequest::default().peer_addr("10.0.0.9:5000".parse().unwrap());
        for h in headers {
            req = req.append_header(("X-Forwarded-For", *h));
        }
        req = req.append_header(("Forwarded", "for=6.6.6.6"));
        client_addr(&req.to_http_request(), hops).map(|ip| ip.to_string()).unwrap_or_default()
    }

    #[test]
    fn the_client_is_the_entry_as_many_hops_from_the_right_as_there_are_proxies() {
        assert_eq!(addr(0, &["1.1.1.1"]), "10.0.0.9", "no proxy trusted: the peer");
        assert_eq!(addr(1, &["7.7.7.7, 1.1.1.1"]), "1.1.1.1", "a forged first hop is ignored");
        assert_eq!(addr(2, &["7.7.7.7, 1.1.1.1, 2.2.2.2"]), "1.1.1.1");
        assert_eq!(addr(1, &["7.7.7.7", "1.1.1.1:443"]), "1.1.1.1", "headers join in order; ports drop");
        assert_eq!(addr(1, &["[2001:db8::5]:443"]), "2001:db8::5");
        assert_eq!(addr(2, &["1.1.1.1"]), "10.0.0.9", "too few entries: not through our proxies");
        assert_eq!(addr(1, &["1.1.1.1, not-an-ip"]), "10.0.0.9");
        assert_eq!(addr(1, &[]), "10.0.0.9", "Forwarded is never read");
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_by_its_address() {
        let auth = Auth::new(&AuthSettings { trust_proxy_hops: 1, ..AuthSettings::development() });
        let key = |xff: &str| {
            let req = TestRequest::default().peer_addr("10.0.0.9:5000".parse().unwrap());
            auth.client_ip(&req.append_header(("X-Forwarded-For", xff)).to_http_request())
        };
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(key("198.51.100.7"), "198.51.100.7");
    }
}
