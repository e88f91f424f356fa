//! User: given / when / then for every branch of `decide`.

mod common;

use std::collections::BTreeMap;

use bozor_domain::order::District;
use bozor_domain::user::{decide, Command as C, Event as E, Grant, Phone, State, UserAggregate};
use bozor_domain::{Actor, Plan, Role};
use common::*;
use uuid::Uuid;

fn phone() -> Phone {
    Phone::parse("+998901234567").unwrap()
}

fn registered(id: Uuid) -> E {
    E::UserRegistered { user_id: id, phone: phone(), at: t0() }
}

fn none() -> Grant {
    Grant { plan: None, district: None }
}

fn grant(role: Role, grant: Grant) -> C {
    C::GrantRole { role, grant }
}

#[test]
fn register_records_the_phone_for_the_system() {
    let id = Uuid::new_v4();
    let events = decide(&State::Initial, &C::Register { user_id: id, phone: phone() }, &ctx(&Actor::system())).unwrap();
    assert_eq!(events, vec![registered(id)]);
    match given::<UserAggregate>(&events) {
        State::Exists(u) => assert_eq!(u.role_list(), vec![Role::Buyer]),
        State::Initial => panic!("registered"),
    }
}

#[test]
fn register_fails_for_people_and_for_existing_users() {
    let id = Uuid::new_v4();
    let admin = actor(Uuid::new_v4(), &[Role::Admin]);
    let register = C::Register { user_id: id, phone: phone() };
    assert_eq!(refused(decide(&State::Initial, &register, &ctx(&admin))), "forbidden");
    let s = given::<UserAggregate>(&[registered(id)]);
    assert_eq!(refused(decide(&s, &register, &ctx(&Actor::system()))), "already_exists");
}

#[test]
fn grant_gives_sellers_a_plan_and_couriers_a_district() {
    let (id, admin) = (Uuid::new_v4(), actor(Uuid::new_v4(), &[Role::Admin]));
    let s = given::<UserAggregate>(&[registered(id)]);
    let seller = decide(&s, &grant(Role::Seller, none()), &ctx(&admin)).unwrap();
    let free = Grant { plan: Some(Plan::Free), district: None };
    assert_eq!(seller, vec![E::RoleGranted { role: Role::Seller, grant: free, by: admin.id, at: t0() }]);
    let courier = Grant { plan: None, district: Some(District::Chilonzor) };
    let events = decide(&s, &grant(Role::Courier, courier.clone()), &ctx(&Actor::system())).unwrap();
    let mut h = vec![registered(id)];
    h.extend(seller);
    h.extend(events);
    match given::<UserAggregate>(&h) {
        State::Exists(u) => {
            assert_eq!(u.role_list(), vec![Role::Buyer, Role::Seller, Role::Courier]);
            assert_eq!((u.plan(), u.district()), (Some(Plan::Free), Some(District::Chilonzor)));
        }
        State::Initial => panic!("registered"),
    }
}

#[test]
fn grant_again_changes_terms_or_does_nothing() {
    let (id, admin) = (Uuid::new_v4(), actor(Uuid::new_v4(), &[Role::Admin]));
    let free = Grant { plan: Some(Plan::Free), district: None };
    let h = [registered(id), E::RoleGranted { role: Role::Seller, grant: free.clone(), by: admin.id, at: t0() }];
    let s = given::<UserAggregate>(&h);
    assert_eq!(decide(&s, &grant(Role::Seller, free), &ctx(&admin)).unwrap(), vec![]);
    let pro = Grant { plan: Some(Plan::Pro), district: None };
    let events = decide(&s, &grant(Role::Seller, pro.clone()), &ctx(&admin)).unwrap();
    assert_eq!(events, vec![E::RoleGranted { role: Role::Seller, grant: pro, by: admin.id, at: t0() }]);
}

#[test]
fn grant_fails_for_non_admins_unknown_users_and_wrong_terms() {
    let id = Uuid::new_v4();
    let s = given::<UserAggregate>(&[registered(id)]);
    for who in [&[Role::Support][..], &[Role::Auditor], &[Role::Seller], &[Role::Buyer]] {
        let a = actor(Uuid::new_v4(), who);
        assert_eq!(refused(decide(&s, &grant(Role::Admin, none()), &ctx(&a))), "forbidden", "{who:?}");
    }
    let admin = actor(Uuid::new_v4(), &[Role::Admin]);
    assert_eq!(refused(decide(&State::Initial, &grant(Role::Admin, none()), &ctx(&admin))), "user_not_found");
    let bad = [
        (Role::Courier, none()),
        (Role::Courier, Grant { plan: Some(Plan::Pro), district: Some(District::Sergeli) }),
        (Role::Seller, Grant { plan: None, district: Some(District::Sergeli) }),
        (Role::Support, Grant { plan: Some(Plan::Pro), district: None }),
        (Role::Buyer, none()),
        (Role::System, none()),
    ];
    for (role, terms) in bad {
        assert_eq!(
            refused(decide(&s, &grant(role, terms.clone()), &ctx(&admin))),
            "invalid_field",
            "{role:?} {terms:?}"
        );
    }
}

#[test]
fn revoke_takes_a_role_away_once() {
    let (id, admin) = (Uuid::new_v4(), actor(Uuid::new_v4(), &[Role::Admin]));
    let h = [registered(id), E::RoleGranted { role: Role::Support, grant: none(), by: admin.id, at: t0() }];
    let s = given::<UserAggregate>(&h);
    let events = decide(&s, &C::RevokeRole { role: Role::Support }, &ctx(&admin)).unwrap();
    assert_eq!(events, vec![E::RoleRevoked { role: Role::Support, by: admin.id, at: t0() }]);
    let mut all = h.to_vec();
    all.extend(events);
    let s = given::<UserAggregate>(&all);
    assert_eq!(decide(&s, &C::RevokeRole { role: Role::Support }, &ctx(&admin)).unwrap(), vec![]);
    match s {
        State::Exists(u) => assert_eq!(u.roles, BTreeMap::new()),
        State::Initial => panic!("registered"),
    }
}

#[test]
fn revoke_fails_for_buyer_system_own_admin_and_non_admins() {
    let admin_id = Uuid::new_v4();
    let admin = actor(admin_id, &[Role::Admin]);
    let h = [registered(admin_id), E::RoleGranted { role: Role::Admin, grant: none(), by: admin_id, at: t0() }];
    let s = given::<UserAggregate>(&h);
    for role in [Role::Buyer, Role::System, Role::Admin] {
        assert_eq!(refused(decide(&s, &C::RevokeRole { role }, &ctx(&admin))), "invalid_field", "{role:?}");
    }
    let support = actor(Uuid::new_v4(), &[Role::Support]);
    assert_eq!(refused(decide(&s, &C::RevokeRole { role: Role::Admin }, &ctx(&support))), "forbidden");
}
