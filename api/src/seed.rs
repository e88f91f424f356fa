//! `bozor seed --demo`: a realistic marketplace written through the command side (never SQL):
//! sellers of each kind and plan, buyers and a courier; product listings (phones, clothes,
//! appliances), classifieds (cars, flats in Tashkent districts, Samarkand and Bukhara,
//! services) and game accounts, titled in Russian, Uzbek Latin, Uzbek Cyrillic and English;
//! and a few orders in each state. The same `--seed` writes the same ids and texts.
//!
//! The first listings are the showcase (`SHOWCASE`): one each of a distinctive thing, which the
//! cross-script recall set (`RECALL`) must find.

use std::collections::BTreeMap;

use bozor_commands::{CommandError, CommandMeta, CommandService, EventStore};
use bozor_domain::flows::{DeliveryRequest, LineRequest};
use bozor_domain::listing::{self, Content, Details, Variant};
use bozor_domain::order::{self, District, Pickup};
use bozor_domain::user::{Grant, Phone};
use bozor_domain::wallet::Provider;
use bozor_domain::{Actor, Money, Plan, Role};
use chrono::Utc;
use uuid::Uuid;

/// A small deterministic generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0 to n-1.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A version 4 UUID from the generator.
    pub fn uuid(&mut self) -> Uuid {
        let bytes = ((u128::from(self.next_u64())) << 64 | u128::from(self.next_u64())).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// One showcase listing: kind, category, title, description, city, district, price in sum.
pub struct Showcase {
    pub kind: &'static str,
    pub category: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub city: &'static str,
    pub price_sum: i64,
}

const fn show(
    kind: &'static str,
    category: &'static str,
    title: &'static str,
    description: &'static str,
    city: &'static str,
    price_sum: i64,
) -> Showcase {
    Showcase { kind, category, title, description, city, price_sum }
}

/// Distinctive listings, one of each, written first by every demo seed.
pub const SHOWCASE: &[Showcase] = &[
    show(
        "classified",
        "cars",
        "Chevrolet Cobalt 2022 Mokriy asfalt",
        "Ideal holatda, bitta egasi",
        "Toshkent",
        165_000_000,
    ),
    show(
        "product",
        "phones",
        "Apple iPhone 15 Pro 256GB Natural Titanium",
        "Новый, запечатан, гарантия",
        "Toshkent",
        14_900_000,
    ),
    show(
        "classified",
        "flats",
        "Квартира в Чиланзаре, 3 комнаты, 9-й квартал",
        "Евроремонт, мебель, рядом метро",
        "Toshkent",
        780_000_000,
    ),
    show("classified", "cars", "Нексия 3 2019, цвет баклажан", "Газ-бензин, один хозяин", "Samarqand", 98_000_000),
    show(
        "classified",
        "cars",
        "Damas 2021 oq rangli, yuk tashish uchun",
        "Motor yaxshi, kuzov toza",
        "Buxoro",
        72_000_000,
    ),
    show("classified", "cars", "Малибу 2 Турбо 2020 жемчужный", "Полная комплектация", "Toshkent", 260_000_000),
    show("classified", "cars", "Gentra 2023 avtomat, kumush", "Probeg 12 000 km", "Toshkent", 150_000_000),
    show(
        "game_account",
        "games",
        "PUBG Mobile аккаунт Завоеватель, M416 ледник",
        "Много скинов, привязка свободна",
        "Toshkent",
        2_500_000,
    ),
    show("game_account", "games", "Standoff 2 akkaunt Karambit Gold", "Pichoqlar va qo‘lqoplar", "Toshkent", 1_200_000),
    show(
        "game_account",
        "games",
        "Mobile Legends account Mythical Glory 600 stars",
        "Many skins, Collector Lancelot",
        "Toshkent",
        900_000,
    ),
    show("game_account", "games", "Free Fire аккаунт с Элитным пропуском", "Редкие образы", "Samarqand", 400_000),
    show("product", "appliances", "Холодильник Artel HD 455 серебристый", "No Frost, 2 камеры", "Toshkent", 6_200_000),
    show("product", "appliances", "Samsung Televizor 55 dyuym QLED", "Smart TV, 4K", "Toshkent", 9_800_000),
    show("product", "clothes", "Кроссовки Nike Air Jordan 1 Chicago", "Оригинал, размер 43", "Toshkent", 2_100_000),
    show("product", "clothes", "Qishki kurtka Columbia, qora", "Issiq, suv o‘tkazmaydi", "Toshkent", 1_700_000),
    show(
        "classified",
        "flats",
        "Yunusobod tumanida 2 xonali kvartira, Mega Planet yonida",
        "Yangi bino, 7-qavat",
        "Toshkent",
        690_000_000,
    ),
    show(
        "classified",
        "flats",
        "Самарқанд шаҳрида ҳовли, Регистон яқинида",
        "6 сотих ер, гараж",
        "Samarqand",
        1_100_000_000,
    ),
    show("classified", "flats", "Бухорода квартира, Ляби-Хауз рядом", "2 комнаты, ремонт", "Buxoro", 420_000_000),
    show(
        "classified",
        "services",
        "Сантехник на дом, Мирзо-Улугбекский район",
        "Выезд за 30 минут",
        "Toshkent",
        150_000,
    ),
    show("classified", "services", "Ingliz tili repetitor, IELTS 7.5", "Onlayn va oflayn darslar", "Toshkent", 300_000),
    show("product", "phones", "Samsung Galaxy S24 Ultra Titanium Violet", "512GB, official", "Toshkent", 16_500_000),
    show("product", "phones", "Redmi Note 13 Pro Plus ko‘k", "Yangi, karobka bilan", "Buxoro", 4_300_000),
    show("product", "appliances", "Стиральная машина LG Direct Drive 8 кг", "Инверторный мотор", "Toshkent", 5_400_000),
    show("classified", "cars", "Chevrolet Spark 2017 sariq", "Konditsioner, tonirovka", "Samarqand", 62_000_000),
    show("classified", "cars", "Lacetti 2015 qizil, gaz", "Kraska toza", "Toshkent", 80_000_000),
    show("product", "appliances", "Konditsioner Midea 12 invertor", "Sovutadi va isitadi", "Toshkent", 4_100_000),
    show("product", "phones", "Наушники AirPods Pro второго поколения", "Оригинал, чек", "Toshkent", 2_900_000),
    show("classified", "services", "Ремонт ноутбуков в Юнусабаде", "Замена экрана, чистка", "Toshkent", 100_000),
    show("product", "clothes", "Ko‘ylak atlas, milliy naqsh", "Qo‘lda tikilgan", "Samarqand", 650_000),
    show(
        "classified",
        "flats",
        "Сергели туманида 1 хонали квартира, Янги Сергели массиви",
        "Янги уй, кадастр тайёр",
        "Toshkent",
        380_000_000,
    ),
];

/// The cross-script recall set: a query in another script, spelling or with a typo, and the
/// showcase listing (index into `SHOWCASE`) it must find in its top 5.
pub const RECALL: &[(&str, usize)] = &[
    ("кобалт мокрый асфальт", 0),
    ("kobalt mokriy", 0),
    ("cobalt asfalt", 0),
    ("айфон 15 про титан", 1),
    ("iphone 15 pro natural", 1),
    ("kvartira Chilonzor 9 kvartal", 2),
    ("квартира чилонзор 9 квартал", 2),
    ("nexia 3 baklajan", 3),
    ("neksiya baklazhan", 3),
    ("дамас юк ташиш", 4),
    ("damas ok rangli", 4),
    ("malibu turbo jemchujniy", 5),
    ("малибу 2 турбо", 5),
    ("жентра автомат кумуш", 6),
    ("gentra avtomat kumush", 6),
    ("пабг завоеватель", 7),
    ("pubg zavoevatel ledni", 7),
    ("стандофф карамбит", 8),
    ("standoff karambit gold", 8),
    ("мобайл легендс глори", 9),
    ("mobile legends mythical glori", 9),
    ("free fire elitnim propuskom", 10),
    ("фри фаер элитный пропуск", 10),
    ("holodilnik artel hd 455", 11),
    ("артел холодильник 455", 11),
    ("самсунг телевизор 55 qled", 12),
    ("televizor samsung 55 dyuym", 12),
    ("krossovki nike jordan chicago", 13),
    ("кроссовки джордан чикаго", 13),
    ("куртка колумбия", 14),
    ("qishki kurtka columbia", 14),
    ("юнусобод мега планет квартира", 15),
    ("yunusabad mega planet", 15),
    ("samarqand hovli registon", 16),
    ("самарканд ховли регистон", 16),
    ("buxoro kvartira lyabi hauz", 17),
    ("бухара ляби хауз", 17),
    ("santexnik mirzo ulugbek", 18),
    ("сантехник мирзо улугбек", 18),
    ("инглиз тили репетитор ielts", 19),
    ("repetitor ingliz ielts", 19),
    ("самсунг галакси с24 ультра", 20),
    ("galaxy s24 ultra violet", 20),
    ("редми ноут 13 про плюс", 21),
    ("redmi note 13 pro plus kok", 21),
    ("stiralnaya mashina lg direct drive", 22),
    ("стиральная машина lg директ", 22),
    ("спарк 2017 сарик", 23),
    ("chevrolet spak 2017 sariq", 23),
    ("лачетти 2015 кизил", 24),
    ("lacetti qizil gaz", 24),
    ("кондиционер мидеа 12", 25),
    ("konditsioner midea invertor", 25),
    ("airpods pro vtorogo pokoleniya", 26),
    ("аирподс про второго", 26),
    ("remont noutbukov yunusabad", 27),
    ("ремонт ноутбуков юнусабад", 27),
    ("куйлак атлас миллий", 28),
    ("koylak atlas milliy nakish", 28),
    ("sergeli massivi 1 xonali", 29),
];

/// How big a demo to write.
#[derive(Debug, Clone, Copy)]
pub struct DemoSize {
    pub listings: usize,
    pub seed: u64,
    /// Commands in flight at once.
    pub concurrency: usize,
}

/// What a seed wrote.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub sellers: usize,
    pub listings: usize,
    pub orders: BTreeMap<&'static str, usize>,
    pub seconds: f64,
    /// False when the database held this seed's demo already (nothing was written).
    pub written: bool,
}

/// Why a seed failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("command refused: {0}")]
    Command(#[from] CommandError),
    #[error("{0}")]
    Other(String),
}

const SELLERS: usize = 24;

fn meta(actor: &Actor, command: &'static str) -> CommandMeta {
    let mut m = CommandMeta::system(command, Utc::now());
    m.actor = actor.clone();
    m
}

fn tiyin(sum: i64) -> Money {
    Money::from_sum(sum).expect("demo prices are valid")
}

/// A registered user with `role` (and plan or district), as an actor.
async fn user(svc: &CommandService, phone: &str, grants: &[(Role, Grant)]) -> Result<Actor, SeedError> {
    let phone = Phone::parse(phone).map_err(|e| SeedError::Other(e.to_string()))?;
    let (id, _) = svc.user_for_phone(&phone, Utc::now()).await?;
    let mut roles = vec![Role::Buyer];
    let mut plan = None;
    for (role, grant) in grants {
        svc.grant_role(&CommandMeta::system("grant_role", Utc::now()), id, *role, grant.clone()).await?;
        roles.push(*role);
        plan = plan.or(grant.plan);
    }
    Ok(Actor { id, roles, plan })
}

/// One generated listing: details, content, price.
fn generated(rng: &mut Rng, n: usize) -> (Details, Content, Money) {
    const CITIES: &[&str] = &["Toshkent", "Toshkent", "Toshkent", "Samarqand", "Buxoro"];
    const DISTRICTS: &[(&str, &str, &str)] = &[
        ("Chilonzor", "Чиланзаре", "Чилонзор"),
        ("Yunusobod", "Юнусабаде", "Юнусобод"),
        ("Mirzo Ulug‘bek", "Мирзо-Улугбекском районе", "Мирзо Улуғбек"),
        ("Yakkasaroy", "Яккасарайском районе", "Яккасарой"),
        ("Sergeli", "Сергели", "Сергели"),
        ("Olmazor", "Алмазаре", "Олмазор"),
        ("Shayxontohur", "Шайхантахуре", "Шайхонтоҳур"),
    ];
    const CARS: &[(&str, &str)] =
        &[("Cobalt", "Кобальт"), ("Nexia", "Нексия"), ("Damas", "Дамас"), ("Malibu", "Малибу"), ("Gentra", "Жентра")];
    const COLORS: &[(&str, &str)] = &[("oq", "белый"), ("qora", "чёрный"), ("kulrang", "серый"), ("ko‘k", "синий")];
    const PHONES: &[&str] = &["iPhone 13", "iPhone 14", "Samsung Galaxy A54", "Redmi Note 12", "Samsung Galaxy S23"];
    const CLOTHES: &[(&str, &str, &str)] = &[
        ("Krossovka Adidas", "Кроссовки Adidas", "Adidas sneakers"),
        ("Erkaklar kurtkasi", "Мужская куртка", "Men's jacket"),
        ("Ayollar ko‘ylagi", "Женское платье", "Women's dress"),
    ];
    const APPLIANCES: &[(&str, &str, &str)] = &[
        ("Muzlatgich Samsung", "Холодильник Samsung", "Samsung fridge"),
        ("Kir yuvish mashinasi Artel", "Стиральная машина Artel", "Artel washer"),
        ("Televizor LG 43", "Телевизор LG 43", "LG TV 43 inch"),
    ];
    const GAMES: &[&str] = &["PUBG Mobile", "Standoff 2", "Mobile Legends", "Free Fire"];
    const SERVICES: &[(&str, &str)] = &[
        ("Kvartira ta‘mirlash", "Ремонт квартир"),
        ("Elektrik xizmati", "Услуги электрика"),
        ("Yuk tashish", "Грузоперевозки"),
    ];

    let city = *rng.pick(CITIES);
    let lang = n % 4; // 0 ru, 1 uz latin, 2 uz cyrillic, 3 en
    let mut attributes = BTreeMap::from([("city".to_owned(), city.to_owned())]);
    let (details, category, title, description, price): (Details, &str, String, String, i64) = match n % 10 {
        0..=2 => {
            let (latin, cyr) = *rng.pick(CARS);
            let year = 2012 + rng.below(13);
            let (uz, ru) = *rng.pick(COLORS);
            let title = match lang {
                0 => format!("Шевроле {cyr} {year}, {ru}"),
                1 => format!("Chevrolet {latin} {year} yil, {uz}"),
                2 => format!("{cyr} {year} йил, сотилади"),
                _ => format!("Chevrolet {latin} {year} for sale"),
            };
            attributes.insert("year".into(), year.to_string());
            let details = Details::Classified { contact_phone: Some(format!("+99890{:07}", rng.below(10_000_000))) };
            (
                details,
                "cars",
                title,
                "Holati yaxshi / В хорошем состоянии".into(),
                50_000_000 + rng.below(200) as i64 * 1_000_000,
            )
        }
        3 | 4 => {
            let (uz, ru, cyr) = *rng.pick(DISTRICTS);
            let rooms = 1 + rng.below(5);
            let place = if city == "Toshkent" { 0 } else { 1 };
            let title = match (lang, place) {
                (0, 0) => format!("{rooms}-комнатная квартира в {ru}"),
                (1, 0) => format!("{uz} tumanida {rooms} xonali kvartira"),
                (2, 0) => format!("{cyr} туманида {rooms} хонали квартира"),
                (_, 0) => format!("{rooms}-room flat in {uz}, Tashkent"),
                (0, _) => format!("{rooms}-комнатная квартира, {city}"),
                (1, _) => format!("{city}da {rooms} xonali kvartira"),
                (2, _) => format!("{rooms} хонали квартира сотилади"),
                _ => format!("{rooms}-room flat in {city}"),
            };
            if place == 0 {
                attributes.insert("district".into(), uz.to_owned());
            }
            attributes.insert("rooms".into(), rooms.to_string());
            let details = Details::Classified { contact_phone: None };
            (
                details,
                "flats",
                title,
                "Hujjatlari tayyor / Документы готовы".into(),
                300_000_000 + rng.below(600) as i64 * 1_000_000,
            )
        }
        5 => {
            let (uz, ru) = *rng.pick(SERVICES);
            let title = if lang.is_multiple_of(2) { ru.to_owned() } else { uz.to_owned() };
            let details = Details::Classified { contact_phone: None };
            (details, "services", title, "Tez va sifatli".into(), 100_000 + rng.below(50) as i64 * 10_000)
        }
        6 => {
            let model = *rng.pick(PHONES);
            let memory = [64, 128, 256][rng.below(3)];
            let title = match lang {
                0 => format!("{model} {memory} ГБ, новый"),
                1 => format!("{model} {memory}GB yangi"),
                2 => format!("{model} {memory}GB янги"),
                _ => format!("{model} {memory}GB new"),
            };
            let variants =
                vec![Variant { sku: "base".into(), label: format!("{memory}GB"), stock: 1 + rng.below(20) as u32 }];
            (
                Details::Product { variants },
                "phones",
                title,
                "Kafolat bilan".into(),
                2_000_000 + rng.below(120) as i64 * 100_000,
            )
        }
        7 => {
            let (uz, ru, en) = *rng.pick(CLOTHES);
            let title = match lang {
                0 => ru.to_owned(),
                3 => en.to_owned(),
                _ => uz.to_owned(),
            };
            let variants = (40..44)
                .map(|size| Variant { sku: format!("s{size}"), label: size.to_string(), stock: rng.below(10) as u32 })
                .collect();
            (
                Details::Product { variants },
                "clothes",
                title,
                "Sifatli mato".into(),
                200_000 + rng.below(100) as i64 * 10_000,
            )
        }
        8 => {
            let (uz, ru, en) = *rng.pick(APPLIANCES);
            let title = match lang {
                0 => ru.to_owned(),
                3 => en.to_owned(),
                _ => uz.to_owned(),
            };
            let variants =
                vec![Variant { sku: "base".into(), label: "standard".into(), stock: 1 + rng.below(5) as u32 }];
            (
                Details::Product { variants },
                "appliances",
                title,
                "Yetkazib berish bor".into(),
                1_500_000 + rng.below(100) as i64 * 100_000,
            )
        }
        _ => {
            let game = *rng.pick(GAMES);
            let level = 10 + rng.below(80) as u32;
            let title = match lang {
                0 => format!("Аккаунт {game}, {level} уровень"),
                1 => format!("{game} akkaunt, {level}-daraja"),
                2 => format!("{game} аккаунт, {level}-даража"),
                _ => format!("{game} account, level {level}"),
            };
            let details = Details::GameAccount { game: game.to_owned(), level, rank: None };
            (
                details,
                "games",
                title,
                "Pochta almashadi / Почта меняется".into(),
                100_000 + rng.below(300) as i64 * 10_000,
            )
        }
    };
    let content = Content {
        title,
        description,
        category: category.to_owned(),
        images: if rng.below(3) > 0 { vec![format!("https://img.bozor.uz/demo/{n}.jpg")] } else { vec![] },
        attributes,
    };
    (details, content, tiyin(price))
}

fn showcase_listing(s: &Showcase, n: usize) -> (Details, Content, Money) {
    let details = match s.kind {
        "product" => {
            Details::Product { variants: vec![Variant { sku: "base".into(), label: "standard".into(), stock: 5 }] }
        }
        "game_account" => {
            let game = ["PUBG Mobile", "Standoff 2", "Mobile Legends", "Free Fire"]
                .into_iter()
                .find(|g| s.title.to_lowercase().contains(&g.to_lowercase()))
                .unwrap_or("PUBG Mobile");
            Details::GameAccount { game: game.to_owned(), level: 70, rank: None }
        }
        _ => Details::Classified { contact_phone: None },
    };
    let content = Content {
        title: s.title.to_owned(),
        description: s.description.to_owned(),
        category: s.category.to_owned(),
        images: vec![format!("https://img.bozor.uz/demo/showcase-{n}.jpg")],
        attributes: BTreeMap::from([("city".to_owned(), s.city.to_owned())]),
    };
    (details, content, tiyin(s.price_sum))
}

/// The id of the showcase listing `n` under `seed` (what the recall set looks for).
pub fn showcase_id(seed: u64, n: usize) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("bozor-demo-{seed}-showcase-{n}").as_bytes())
}

/// Writes the demo. Writes nothing when this seed's demo is there already.
pub async fn demo(pool: &deadpool_postgres::Pool, size: DemoSize) -> Result<Report, SeedError> {
    let started = std::time::Instant::now();
    let svc = CommandService::new(EventStore::new(pool.clone(), 100));
    let mut report = Report { sellers: SELLERS, listings: 0, orders: BTreeMap::new(), seconds: 0.0, written: false };
    let first = showcase_id(size.seed, 0);
    let exists: bool = pool
        .get()
        .await
        .map_err(|e| SeedError::Other(e.to_string()))?
        .query_one("SELECT EXISTS (SELECT 1 FROM streams WHERE stream_id = $1)", &[&first])
        .await
        .map_err(|e| SeedError::Other(e.to_string()))?
        .get(0);
    if exists {
        // The last thing a demo writes is its last order: without it, a seed was cut short.
        let (_, last_order) = *demo_orders(size.seed).last().expect("demo orders");
        let finished: bool = pool
            .get()
            .await
            .map_err(|e| SeedError::Other(e.to_string()))?
            .query_one("SELECT EXISTS (SELECT 1 FROM streams WHERE stream_id = $1)", &[&last_order])
            .await
            .map_err(|e| SeedError::Other(e.to_string()))?
            .get(0);
        if !finished {
            return Err(SeedError::Other(format!(
                "an earlier demo seed (--seed {}) was interrupted: drop the database and seed again",
                size.seed
            )));
        }
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let phone = |n: usize| format!("+99899{:03}{:04}", size.seed % 1000, n);
    let admin = user(&svc, &phone(9000), &[(Role::Admin, Grant { plan: None, district: None })]).await?;
    let plans = [Plan::Free, Plan::Premium, Plan::Pro];
    let mut sellers = Vec::with_capacity(SELLERS);
    for i in 0..SELLERS {
        let grant = Grant { plan: Some(plans[i % 3]), district: None };
        sellers.push(user(&svc, &phone(i), &[(Role::Seller, grant)]).await?);
    }
    let courier =
        user(&svc, &phone(9001), &[(Role::Courier, Grant { plan: None, district: Some(District::Chilonzor) })]).await?;
    let buyers: Vec<Actor> = {
        let mut b = Vec::new();
        for i in 0..6 {
            b.push(user(&svc, &phone(8000 + i), &[]).await?);
        }
        b
    };

    // Listings: created, submitted, approved; `concurrency` at a time.
    let total = size.listings.max(SHOWCASE.len());
    let svc = std::sync::Arc::new(svc);
    let sellers = std::sync::Arc::new(sellers);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..size.concurrency.max(1) {
        let (svc, sellers, next, admin) = (svc.clone(), sellers.clone(), next.clone(), admin.clone());
        let seed = size.seed;
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    return Ok::<(), SeedError>(());
                }
                let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(n as u64));
                let (id, (details, content, price)) = match SHOWCASE.get(n) {
                    Some(s) => (showcase_id(seed, n), showcase_listing(s, n)),
                    None => (rng.uuid(), generated(&mut rng, n)),
                };
                let seller = &sellers[n % sellers.len()];
                svc.create_listing(&meta(seller, "create_listing"), id, details, content, price).await?;
                svc.listing_command(&meta(seller, "submit_listing"), id, listing::Command::Submit).await?;
                svc.listing_command(&meta(&admin, "approve_listing"), id, listing::Command::Approve).await?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| SeedError::Other(e.to_string()))??;
    }
    report.listings = total;

    // Orders of a game account each, from the first sellers' generated listings: one per state.
    let svc = std::sync::Arc::try_unwrap(svc).map_err(|_| SeedError::Other("seed tasks still running".into()))?;
    let sellers =
        std::sync::Arc::try_unwrap(sellers).map_err(|_| SeedError::Other("seed tasks still running".into()))?;
    report.orders = orders(&svc, size.seed, &admin, &sellers, &buyers, &courier).await?;
    report.seconds = started.elapsed().as_secs_f64();
    report.written = true;
    Ok(report)
}

/// The states the demo's orders are left in, two orders each.
const STATES: &[&str] = &["placed", "paid", "accepted", "picked_up", "delivered", "completed", "cancelled"];

/// The (listing, order) ids of the demo's orders under `seed`, in the order they are written.
fn demo_orders(seed: u64) -> Vec<(Uuid, Uuid)> {
    let mut rng = Rng::new(seed ^ 0x0bde_0bde);
    (0..STATES.len() * 2).map(|_| (rng.uuid(), rng.uuid())).collect()
}

/// A few orders in each state: placed, paid, accepted, picked up, delivered, completed,
/// cancelled. Each buys one unit of its own new product listing.
async fn orders(
    svc: &CommandService,
    seed: u64,
    admin: &Actor,
    sellers: &[Actor],
    buyers: &[Actor],
    courier: &Actor,
) -> Result<BTreeMap<&'static str, usize>, SeedError> {
    let mut ids = demo_orders(seed).into_iter();
    let mut counts = BTreeMap::new();
    for b in buyers {
        let meta = meta(&Actor::system(), "deposit");
        svc.deposit(&meta, b.id, tiyin(50_000_000), Provider::Manual, format!("demo-{seed}-{}", b.id)).await?;
    }
    for (i, state) in STATES.iter().enumerate() {
        for k in 0..2 {
            let seller = &sellers[(i * 2 + k) % sellers.len()];
            let buyer = &buyers[(i + k) % buyers.len()];
            let (listing_id, order_id) = ids.next().expect("an id pair per order");
            let variants = vec![Variant { sku: "base".into(), label: "standard".into(), stock: 3 }];
            let content = Content {
                title: format!("Termos Tefal 0.5 l #{}", i * 2 + k),
                description: "Issiqlikni 12 soat saqlaydi".into(),
                category: "appliances".into(),
                images: vec![],
                attributes: BTreeMap::from([("city".to_owned(), "Toshkent".to_owned())]),
            };
            svc.create_listing(
                &meta(seller, "create_listing"),
                listing_id,
                Details::Product { variants },
                content,
                tiyin(250_000),
            )
            .await?;
            svc.listing_command(&meta(seller, "submit_listing"), listing_id, listing::Command::Submit).await?;
            svc.listing_command(&meta(admin, "approve_listing"), listing_id, listing::Command::Approve).await?;
            let line = LineRequest { listing_id, sku: Some("base".into()), quantity: 1 };
            let delivery = DeliveryRequest { district: District::Chilonzor, address: "Bunyodkor 12".into() };
            svc.place_order(&meta(buyer, "place_order"), order_id, vec![line], Some(delivery)).await?;
            let steps: &[&str] = match *state {
                "placed" => &[],
                "cancelled" => &["cancel"],
                "paid" => &["pay"],
                "accepted" => &["pay", "accept"],
                "picked_up" => &["pay", "accept", "assign", "pick_up"],
                "delivered" => &["pay", "accept", "assign", "pick_up", "deliver"],
                _ => &["pay", "accept", "assign", "pick_up", "deliver", "complete"],
            };
            for step in steps {
                match *step {
                    "cancel" => {
                        svc.cancel_order(&meta(buyer, "cancel_order"), order_id, "changed my mind".into()).await?
                    }
                    "pay" => svc.pay_order(&meta(buyer, "pay_order"), order_id).await?,
                    "accept" => {
                        let pickup = Pickup { district: District::Chilonzor, address: "Qatortol 5".into() };
                        svc.order_step(&meta(seller, "accept_order"), order_id, order::Command::Accept { pickup })
                            .await?
                    }
                    "assign" => svc.assign_courier(&meta(courier, "assign_courier"), order_id, courier.id).await?,
                    "pick_up" => {
                        svc.order_step(&meta(courier, "pick_up_order"), order_id, order::Command::PickUp).await?
                    }
                    "deliver" => svc.deliver_order(&meta(courier, "deliver_order"), order_id).await?,
                    _ => svc.complete_order(&meta(buyer, "confirm_order"), order_id, false).await?,
                };
            }
            *counts.entry(*state).or_insert(0) += 1;
        }
    }
    Ok(counts)
}
