//! One method per command of the API: which streams to load, which flow decides.

use bozor_domain::escrow::Resolution;
use bozor_domain::flows::{self, DeliveryRequest, LineRequest, UnitOfWork};
use bozor_domain::listing::{self, Content, ContentPatch, Details, ListingAggregate, PromotionTier};
use bozor_domain::order::{self, OrderAggregate};
use bozor_domain::user::UserAggregate;
use bozor_domain::wallet::{self, PlatformAccount, Provider, WalletAggregate};
use bozor_domain::{Context, DomainError, Money};
use uuid::Uuid;

use crate::service::{CommandError, CommandMeta, CommandService, Loader, Outcome};
use crate::store::Want;

type Flow<'a> = &'a (dyn Fn(&mut UnitOfWork, &Context) -> Result<(), DomainError> + Sync);

impl CommandService {
    /// Runs `flow` on one listing stream.
    async fn on_listing(&self, meta: &CommandMeta, id: Uuid, flow: Flow<'_>) -> Result<Outcome, CommandError> {
        self.run(
            meta,
            id,
            move |mut l: Loader| async move {
                l.listing(id).await?;
                Ok(l)
            },
            flow,
        )
        .await
    }

    /// Runs `flow` on an order and everything its steps touch.
    async fn on_order(&self, meta: &CommandMeta, id: Uuid, flow: Flow<'_>) -> Result<Outcome, CommandError> {
        self.run(
            meta,
            id,
            move |mut l: Loader| async move {
                l.order_world(id).await?;
                Ok(l)
            },
            flow,
        )
        .await
    }

    /// A seller creates a draft listing.
    pub async fn create_listing(
        &self,
        meta: &CommandMeta,
        listing_id: Uuid,
        details: Details,
        content: Content,
        price: Money,
    ) -> Result<Outcome, CommandError> {
        let command = listing::Command::Create { listing_id, details, content, price };
        self.on_listing(meta, listing_id, &|uow, ctx| uow.listings.exec(listing_id, &command, ctx).map(|_| ())).await
    }

    /// A command on one listing alone (submit, approve, reject, block, archive, delete, auto-approve).
    pub async fn listing_command(
        &self,
        meta: &CommandMeta,
        listing_id: Uuid,
        command: listing::Command,
    ) -> Result<Outcome, CommandError> {
        self.on_listing(meta, listing_id, &|uow, ctx| uow.listings.exec(listing_id, &command, ctx).map(|_| ())).await
    }

    /// The seller edits content and/or the price. Fails when neither is given.
    pub async fn update_listing(
        &self,
        meta: &CommandMeta,
        listing_id: Uuid,
        patch: ContentPatch,
        price: Option<Money>,
    ) -> Result<Outcome, CommandError> {
        self.on_listing(meta, listing_id, &|uow, ctx| {
            let no_patch = patch == ContentPatch::default();
            if no_patch && price.is_none() {
                return Err(DomainError::Invalid { field: "body", reason: "no field to change" });
            }
            if !no_patch {
                uow.listings.exec(listing_id, &listing::Command::Update { patch: patch.clone() }, ctx)?;
            }
            if let Some(price) = price {
                uow.listings.exec(listing_id, &listing::Command::ChangePrice { price }, ctx)?;
            }
            Ok(())
        })
        .await
    }

    /// The seller pays for a promotion from their wallet.
    pub async fn promote_listing(
        &self,
        meta: &CommandMeta,
        listing_id: Uuid,
        tier: PromotionTier,
        days: u32,
    ) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        let seller_wallet = wallet::user_wallet_id(meta.actor.id);
        let revenue = wallet::platform_owner(PlatformAccount::Revenue, listing_id).wallet_id();
        self.run(
            meta,
            listing_id,
            move |mut l: Loader| async move {
                l.prefetch(&[
                    Want::of::<ListingAggregate>(listing_id),
                    Want::of::<WalletAggregate>(seller_wallet),
                    Want::of::<WalletAggregate>(revenue),
                ])
                .await?;
                l.listing(listing_id).await?;
                l.wallet(seller_wallet).await?;
                l.wallet(revenue).await?;
                Ok(l)
            },
            |uow, ctx| flows::promote(uow, ctx, listing_id, tier, days, journal),
        )
        .await
    }

    /// A buyer places an order of listings from one seller.
    pub async fn place_order(
        &self,
        meta: &CommandMeta,
        order_id: Uuid,
        lines: Vec<LineRequest>,
        delivery: Option<DeliveryRequest>,
    ) -> Result<Outcome, CommandError> {
        let mut listing_ids: Vec<Uuid> = lines.iter().map(|l| l.listing_id).collect();
        listing_ids.sort();
        listing_ids.dedup();
        self.run(
            meta,
            order_id,
            move |mut l: Loader| {
                let listing_ids = listing_ids.clone();
                async move {
                    let mut wants = vec![Want::of::<OrderAggregate>(order_id)];
                    wants.extend(listing_ids.iter().copied().map(Want::of::<ListingAggregate>));
                    l.prefetch(&wants).await?;
                    l.order(order_id).await?;
                    for id in listing_ids {
                        l.listing(id).await?;
                    }
                    Ok(l)
                }
            },
            |uow, ctx| flows::place_order(uow, ctx, order_id, &lines, delivery.clone()),
        )
        .await
    }

    /// The buyer pays from their wallet: the escrow opens funded.
    pub async fn pay_order(&self, meta: &CommandMeta, order_id: Uuid) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        let buyer_wallet = wallet::user_wallet_id(meta.actor.id);
        self.run(
            meta,
            order_id,
            move |mut l: Loader| async move {
                l.order_payment_and(order_id, &[Want::of::<WalletAggregate>(buyer_wallet)]).await?;
                l.wallet(buyer_wallet).await?;
                Ok(l)
            },
            |uow, ctx| flows::pay_order(uow, ctx, order_id, journal),
        )
        .await
    }

    /// A step on the order alone: accept, pick up.
    pub async fn order_step(
        &self,
        meta: &CommandMeta,
        order_id: Uuid,
        command: order::Command,
    ) -> Result<Outcome, CommandError> {
        // The order alone: not its world, whose listings and wallets such a step never changes.
        let flow =
            |uow: &mut flows::UnitOfWork, ctx: &bozor_domain::Context| flows::order_step(uow, ctx, order_id, &command);
        self.run(
            meta,
            order_id,
            move |mut l: Loader| async move {
                l.order(order_id).await?;
                Ok(l)
            },
            &flow,
        )
        .await
    }

    /// A courier takes an order, or staff assign one: the courier's user stream is read to
    /// check they are a registered courier of the order's district.
    pub async fn assign_courier(
        &self,
        meta: &CommandMeta,
        order_id: Uuid,
        courier_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        self.run(
            meta,
            order_id,
            move |mut l: Loader| async move {
                // The order and the courier, in one round trip: not the order's world.
                l.prefetch(&[Want::of::<OrderAggregate>(order_id), Want::of::<UserAggregate>(courier_id)]).await?;
                l.order(order_id).await?;
                l.user(courier_id).await?;
                Ok(l)
            },
            |uow, ctx| flows::assign_courier(uow, ctx, order_id, courier_id),
        )
        .await
    }

    /// The courier delivered, or the seller handed over a game account's credentials.
    pub async fn deliver_order(&self, meta: &CommandMeta, order_id: Uuid) -> Result<Outcome, CommandError> {
        self.on_order(meta, order_id, &|uow, ctx| flows::deliver(uow, ctx, order_id)).await
    }

    /// The buyer confirms receipt (or the scheduler, when due, with `automatic`).
    pub async fn complete_order(
        &self,
        meta: &CommandMeta,
        order_id: Uuid,
        automatic: bool,
    ) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        self.on_order(meta, order_id, &|uow, ctx| flows::complete(uow, ctx, order_id, journal, automatic)).await
    }

    /// Cancel before pick-up, refunding a paid order in full.
    pub async fn cancel_order(
        &self,
        meta: &CommandMeta,
        order_id: Uuid,
        reason: String,
    ) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        self.on_order(meta, order_id, &|uow, ctx| flows::cancel(uow, ctx, order_id, &reason, journal)).await
    }

    /// The scheduler cancels an order left unpaid for `unpaid_ttl`.
    pub async fn expire_order(
        &self,
        meta: &CommandMeta,
        order_id: Uuid,
        unpaid_ttl: chrono::Duration,
    ) -> Result<Outcome, CommandError> {
        self.on_order(meta, order_id, &|uow, ctx| flows::expire_unpaid(uow, ctx, order_id, unpaid_ttl)).await
    }

    /// The buyer asks to return delivered goods.
    pub async fn request_return(
        &self,
        meta: &CommandMeta,
        order_id: Uuid,
        reason: String,
    ) -> Result<Outcome, CommandError> {
        self.on_order(meta, order_id, &|uow, ctx| flows::request_return(uow, ctx, order_id, &reason)).await
    }

    /// The seller or an admin refunds a returned order, fully or partly.
    pub async fn refund_order(
        &self,
        meta: &CommandMeta,
        order_id: Uuid,
        amount: Option<Money>,
    ) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        self.on_order(meta, order_id, &|uow, ctx| flows::refund(uow, ctx, order_id, amount, journal)).await
    }

    /// The buyer or the seller disputes a delivered order.
    pub async fn open_dispute(
        &self,
        meta: &CommandMeta,
        order_id: Uuid,
        reason: String,
    ) -> Result<Outcome, CommandError> {
        self.on_order(meta, order_id, &|uow, ctx| flows::open_dispute(uow, ctx, order_id, &reason)).await
    }

    /// An admin resolves a dispute.
    pub async fn resolve_dispute(
        &self,
        meta: &CommandMeta,
        order_id: Uuid,
        resolution: Resolution,
    ) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        self.on_order(meta, order_id, &|uow, ctx| flows::resolve_dispute(uow, ctx, order_id, resolution, journal)).await
    }

    /// Credits a user's wallet from a provider (or an admin's manual credit).
    pub async fn deposit(
        &self,
        meta: &CommandMeta,
        user_id: Uuid,
        amount: Money,
        provider: Provider,
        provider_tx_id: String,
    ) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        let (user_wallet, clearing) = (
            wallet::user_wallet_id(user_id),
            wallet::platform_owner(PlatformAccount::ProviderClearing, user_id).wallet_id(),
        );
        self.run(
            meta,
            user_wallet,
            move |mut l: Loader| async move {
                l.prefetch(&[Want::of::<WalletAggregate>(user_wallet), Want::of::<WalletAggregate>(clearing)]).await?;
                l.wallet(user_wallet).await?;
                l.wallet(clearing).await?;
                Ok(l)
            },
            |uow, ctx| flows::deposit(uow, ctx, user_id, amount, provider, &provider_tx_id, journal),
        )
        .await
    }

    /// The wallet's owner asks for a payout to a card, within `limits`.
    #[allow(clippy::too_many_arguments)]
    pub async fn request_withdrawal(
        &self,
        meta: &CommandMeta,
        user_id: Uuid,
        withdrawal_id: Uuid,
        amount: Money,
        card: flows::Card,
        limits: flows::WithdrawalLimits,
    ) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        let user_wallet = wallet::user_wallet_id(user_id);
        self.run_for(
            meta,
            user_wallet,
            withdrawal_id,
            move |mut l: Loader| async move {
                l.wallet(user_wallet).await?;
                Ok(l)
            },
            |uow, ctx| flows::request_withdrawal(uow, ctx, user_id, withdrawal_id, amount, &card, limits, journal),
        )
        .await
    }

    /// A payout completed (`succeeded`) or failed.
    pub async fn finish_withdrawal(
        &self,
        meta: &CommandMeta,
        user_id: Uuid,
        withdrawal_id: Uuid,
        succeeded: bool,
    ) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        let (user_wallet, payout) = (
            wallet::user_wallet_id(user_id),
            wallet::platform_owner(PlatformAccount::PayoutClearing, withdrawal_id).wallet_id(),
        );
        self.run(
            meta,
            user_wallet,
            move |mut l: Loader| async move {
                l.prefetch(&[Want::of::<WalletAggregate>(user_wallet), Want::of::<WalletAggregate>(payout)]).await?;
                l.wallet(user_wallet).await?;
                l.wallet(payout).await?;
                Ok(l)
            },
            |uow, ctx| match succeeded {
                true => flows::complete_withdrawal(uow, ctx, user_id, withdrawal_id, journal),
                false => flows::fail_withdrawal(uow, ctx, user_id, withdrawal_id, journal),
            },
        )
        .await
    }
}
