//! Commands on users (registration at first login, roles) and on game-account credentials
//! (sealed before they are decided on, opened only after the read is recorded).

use bozor_domain::flows;
use bozor_domain::listing::{self, SealedCredentials};
use bozor_domain::user::{self, Grant, Phone};
use bozor_domain::{Actor, Context, DomainError, Role};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::service::{CommandError, CommandMeta, CommandService, Loader, Outcome};
use crate::store::StoreError;
use crate::vault::{Credentials, Vault};

impl CommandMeta {
    /// bozor itself acting at `now` (registration, timers, the bootstrap CLI).
    pub fn system(command: &'static str, now: DateTime<Utc>) -> CommandMeta {
        let id = Uuid::new_v4();
        CommandMeta {
            actor: Actor::system(),
            now,
            command,
            request_id: id,
            correlation_id: id,
            idempotency: None,
            if_match: None,
        }
    }
}

impl CommandService {
    /// The user a phone number logs in as, registered on its first login, with the position
    /// of the registration when this call wrote it (for read-your-writes). The phone's row in
    /// `user_phones` is claimed first, so two first logins of one number get one user; the
    /// registration after it is idempotent, so a crash between the two heals at the next login.
    pub async fn user_for_phone(&self, phone: &Phone, now: DateTime<Utc>) -> Result<(Uuid, Option<i64>), CommandError> {
        let client = self.store().pool().get().await.map_err(StoreError::from)?;
        let user_id: Uuid = client
            .query_one(
                "WITH claimed AS (INSERT INTO user_phones (phone, user_id) VALUES ($1, $2)
                                  ON CONFLICT (phone) DO NOTHING RETURNING user_id)
                 SELECT user_id FROM claimed UNION ALL SELECT user_id FROM user_phones WHERE phone = $1",
                &[&phone.as_str(), &Uuid::new_v4()],
            )
            .await
            .map_err(StoreError::from)?
            .get(0);
        let meta = CommandMeta::system("register_user", now);
        let register = user::Command::Register { user_id, phone: phone.clone() };
        let outcome = self
            .run(
                &meta,
                user_id,
                move |mut l: Loader| async move {
                    l.user(user_id).await?;
                    Ok(l)
                },
                |uow, ctx| match uow.users.state(user_id) {
                    user::State::Initial => uow.users.exec(user_id, &register, ctx).map(|_| ()),
                    user::State::Exists(_) => Ok(()),
                },
            )
            .await?;
        Ok((user_id, outcome.position))
    }

    /// The user's current state (roles, plan, district), e.g. to mint a token from.
    pub async fn user(&self, user_id: Uuid) -> Result<Option<user::User>, CommandError> {
        Ok(match self.store().load::<user::UserAggregate>(user_id).await?.state {
            user::State::Exists(u) => Some(*u),
            user::State::Initial => None,
        })
    }

    /// An admin (or the system) grants `role` to a user on `grant`'s terms.
    pub async fn grant_role(
        &self,
        meta: &CommandMeta,
        user_id: Uuid,
        role: Role,
        grant: Grant,
    ) -> Result<Outcome, CommandError> {
        self.user_command(meta, user_id, user::Command::GrantRole { role, grant }).await
    }

    /// An admin (or the system) revokes `role`.
    pub async fn revoke_role(&self, meta: &CommandMeta, user_id: Uuid, role: Role) -> Result<Outcome, CommandError> {
        self.user_command(meta, user_id, user::Command::RevokeRole { role }).await
    }

    async fn user_command(
        &self,
        meta: &CommandMeta,
        user_id: Uuid,
        command: user::Command,
    ) -> Result<Outcome, CommandError> {
        self.run(
            meta,
            user_id,
            move |mut l: Loader| async move {
                l.user(user_id).await?;
                Ok(l)
            },
            |uow, ctx| uow.users.exec(user_id, &command, ctx).map(|_| ()),
        )
        .await
    }

    /// The seller sets a game account's login and password. They are decided on before they
    /// are sealed (so no one creates data keys for listings that are not theirs), then sealed
    /// under the listing's data key; only the ciphertext is appended.
    pub async fn set_credentials(
        &self,
        meta: &CommandMeta,
        vault: &Vault,
        listing_id: Uuid,
        credentials: &Credentials,
    ) -> Result<Outcome, CommandError> {
        for (field, value) in [("login", &credentials.login), ("password", &credentials.password)] {
            if value.is_empty() || value.len() > crate::vault::CREDENTIAL_FIELD_BYTES_MAX {
                return Err(DomainError::Invalid { field, reason: "must be 1 to 256 bytes" }.into());
            }
        }
        let ctx = Context { now: meta.now, actor: meta.actor.clone() };
        let state = self.store().load::<listing::ListingAggregate>(listing_id).await?.state;
        let placeholder = SealedCredentials { key_id: Uuid::nil(), nonce: "-".into(), ciphertext: "-".into() };
        listing::decide(&state, &listing::Command::SetCredentials { sealed: placeholder }, &ctx)?;
        let sealed = vault.seal(listing_id, credentials).await?;
        self.listing_command(meta, listing_id, listing::Command::SetCredentials { sealed }).await
    }

    /// The buyer of a delivered order (`order_id`), or an admin, reads a game account's
    /// credentials. The read is appended first; only then are they opened.
    pub async fn reveal_credentials(
        &self,
        meta: &CommandMeta,
        vault: &Vault,
        listing_id: Uuid,
        order_id: Option<Uuid>,
    ) -> Result<(Outcome, Credentials), CommandError> {
        // Every reveal is decided and recorded anew: a stored answer to an earlier request
        // with the same Idempotency-Key would skip both the check and the record.
        let meta = CommandMeta { idempotency: None, ..meta.clone() };
        // The credentials the recorded reveal decided on, not whatever a later command set.
        let revealed = std::sync::Mutex::new(None);
        let outcome = self
            .run(
                &meta,
                listing_id,
                move |mut l: Loader| async move {
                    l.listing(listing_id).await?;
                    if let Some(order_id) = order_id {
                        l.order(order_id).await?;
                    }
                    Ok(l)
                },
                |uow, ctx| {
                    flows::reveal_credentials(uow, ctx, listing_id, order_id)?;
                    let listing::State::Exists(l) = uow.listings.state(listing_id) else {
                        return Err(DomainError::NotFound { what: "listing" });
                    };
                    let sealed = l.sealed_credentials()?.clone();
                    *revealed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sealed);
                    Ok(())
                },
            )
            .await?;
        let sealed = revealed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let sealed = sealed.ok_or(DomainError::CredentialsMissing)?;
        let credentials = vault.open(listing_id, &sealed).await?;
        Ok((outcome, credentials))
    }

    /// The seller or an admin erases a game account's credentials: the erasure is recorded,
    /// then the data key is deleted. A retry after a failed delete deletes it then.
    pub async fn erase_credentials(
        &self,
        meta: &CommandMeta,
        vault: &Vault,
        listing_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let outcome = self.listing_command(meta, listing_id, listing::Command::EraseCredentials).await?;
        vault.shred(listing_id).await?;
        Ok(outcome)
    }
}
